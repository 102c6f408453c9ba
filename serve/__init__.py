"""The serving API: recommendations and "more like this" over the analysts' published file."""
