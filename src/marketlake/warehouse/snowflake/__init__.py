"""The Snowflake warehouse (extra ``snowflake``): ``warehouse`` holds the adapter,
``connection`` its URLs, credentials and connections, ``results`` the rows-to-Arrow step."""

from marketlake.warehouse.snowflake.warehouse import SnowflakeWarehouse

__all__ = ["SnowflakeWarehouse"]
