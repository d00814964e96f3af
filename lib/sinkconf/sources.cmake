# Extra sink configuration parsers (webhook, email) append to CRS_CORE_SOURCES here.
