SELECT
  eventtime,
  eventsource,
  eventname,
  awsregion,
  sourceipaddress,
  useragent,
  useridentity.type AS useridentity_type,
  useridentity.arn AS useridentity_arn,
  useridentity.accountid AS useridentity_accountid,
  errorcode,
  errormessage,
  requestparameters,
  recipientaccountid,
  eventid
FROM cloudtrail_logs
WHERE (lower(errorcode) LIKE '%unauthorizedoperation' ESCAPE '\' OR lower(errorcode) LIKE 'accessdenied%' ESCAPE '\')
ORDER BY eventtime DESC
