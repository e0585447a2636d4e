"""The Spark job entry point: ``spark-submit`` runs the ``process`` stage of a planned run.

The run spec is stored in the lake when the run is planned (``marketlake run --plan``), so
the driver that ``spark-submit`` starts, wherever it runs, computes exactly what the run
planned::

    spark-submit --master yarn "$(python -m marketlake.cli.spark_job --path)" \\
        --run-id RUN_ID --home /shared/marketlake-data

The session ``spark-submit`` configured (master, resources, jars) is the one the engine uses;
the ``[spark]`` settings only apply to sessions marketlake starts itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the ``process`` stage of ``--run-id`` on the Spark session of this driver."""
    parser = argparse.ArgumentParser(
        prog="marketlake-spark-job",
        description="Run the process stage of a planned marketlake run on Spark.",
    )
    parser.add_argument("--run-id", help="id of a planned run (marketlake run --plan)")
    parser.add_argument("--home", type=Path, default=None, help="marketlake home folder")
    parser.add_argument("--config", type=Path, default=None, help="marketlake TOML config")
    parser.add_argument("--lake", default=None, help="lake URL (default: <home>/lake)")
    parser.add_argument(
        "--path", action="store_true", help="print the path of this file for spark-submit"
    )
    args = parser.parse_args(argv)
    if args.path:
        sys.stdout.write(str(Path(__file__).resolve()) + "\n")
        return 0
    if not args.run_id:
        parser.error("--run-id is required")
    from marketlake.errors import MarketlakeError

    try:
        return _run_process_stage(args)
    except MarketlakeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


def _run_process_stage(args: argparse.Namespace) -> int:
    from marketlake.cli.run import run_pipeline
    from marketlake.components import open_lake
    from marketlake.engines.spark.session import import_pyspark
    from marketlake.errors import ConfigError
    from marketlake.pipeline.plan import require_spec
    from marketlake.settings import load_settings

    settings = load_settings(config=args.config, home=args.home, lake=args.lake)
    spec = require_spec(open_lake(settings), args.run_id)
    if spec.engine != "spark":
        raise ConfigError(
            f"run {spec.run_id} was planned with engine {spec.engine!r}; a Spark job runs runs "
            "planned with --engine spark"
        )
    import_pyspark()
    from pyspark.sql import SparkSession

    # Started first, from spark-submit's configuration, so the engine joins this session.
    session = SparkSession.builder.getOrCreate()
    try:
        report = run_pipeline(
            config=args.config,
            quiet=True,
            run_id=args.run_id,
            stage="process",
            home=args.home,
            lake=args.lake,
        )
    finally:
        session.stop()
    return 0 if report is None or report.succeeded else 1


if __name__ == "__main__":
    # spark-submit runs this file as a script: its folder must not shadow top-level modules.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.exit(main())
