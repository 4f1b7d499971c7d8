"""What an analyst asks of a trained model: its density at points, a synthetic catalogue.

- :mod:`pipeline.query.points`: query points from the command line or a CSV file.
- :mod:`pipeline.query.density`: log-density and density per km² over the trained seeds.
- :mod:`pipeline.query.synthetic`: events drawn from the seeds' mixture, CSV or GeoParquet.
- :mod:`pipeline.query.bundle`: the committed run's weights, fetched on a fresh clone.
"""
