"""Track recommendations for MooVitamix users, from the dbt marts to schema `ml` of DuckDB.

`python -m recommender score` scores every current user with the champion model (the last step
of the nightly job), `train` fits the candidates and baselines and runs the promotion gate,
`bench` measures them on the dev API's data. See recommender/README.md.
"""


class RecommenderError(Exception):
    """A condition the recommender cannot work around (no listens yet, a missing artifact)."""
