"""Functions and triggers of the allocation database, applied again whenever they change
(services.common.db.repeatable_files). A package so that installs ship its .sql files."""
