"""Relais: match influencers and their content to the micro-moments of a customer journey.

The engine runs without a web server: ``Engine.open(Settings.from_env())`` then ``engine.match(...)``.
"""

__version__ = "0.1.0"
