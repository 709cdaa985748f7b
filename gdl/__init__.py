"""gdl: the library behind the pipeline (models, metrics, data sources); stages/ are its entry points."""
