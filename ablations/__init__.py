"""The papers' studies, one module each; every study is a plain function returning DataFrames."""
