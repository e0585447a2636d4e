"""The PostgreSQL warehouse (extra ``postgres``): ``warehouse`` holds the adapter, ``connection``
its URLs, connections and error classes."""

from marketlake.warehouse.postgres.warehouse import PostgresWarehouse

__all__ = ["PostgresWarehouse"]
