"""geosgm: score-based generative models of natural hazards on the sphere."""
