"""Where runs are kept: row shapes, the SQLite tail, the Parquet lake, the DuckDB engine.

rows.py (the columns and the checks of a row), tail.py (the SQLite file every write
lands in first), compaction.py (the tail -> Parquet lake move, prune, the lake's files),
engine.py (DuckDB over the lake and the tail: views, the SQL files, `Result`) and
doctor.py (checks and repairs). Nothing here imports analytics/, recording/ or render/.
"""
