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
WHERE (lower(useridentity.type) = 'root' AND useridentity.invokedby IS NULL AND NOT coalesce(eventtype = 'AwsServiceEvent', false))
ORDER BY eventtime DESC
