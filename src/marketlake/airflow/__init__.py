"""Apache Airflow 3 orchestration: the ``stock_market_pipeline`` DAG, its tasks and timetable.

Modules here that Airflow imports while parsing a DAG file (:mod:`.dag`, :mod:`.timetable`,
:mod:`.plugin`, :mod:`.task`) import nothing heavy at module level: the pipeline runs in a
separate process per task (:mod:`.stage`).
"""
