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
WHERE (eventsource = 'kms.amazonaws.com' AND (eventname IN ('DisableKey', 'ScheduleKeyDeletion')))
ORDER BY eventtime DESC
