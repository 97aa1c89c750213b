"""milink: migrate SQL Server databases to Azure SQL Managed Instance over the Managed Instance link."""

from milink._milink import __version__

__all__ = ["__version__"]
