# Expiry and CRL alerts with the real broker (alerts_test.py): stages, routing by template, the
# default mail, cancellation by revocation and renewal, CRLs made with `openssl ca -gencrl`, and a
# broker that was down when alerts were due. Label: integration.
if(NOT WIN32 AND CRS_PYTHON3 AND TARGET certrelay)
  crs_broker_test(alerts --certrelay $<TARGET_FILE:certrelay>)
endif()
