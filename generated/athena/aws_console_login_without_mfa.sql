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
WHERE (eventname = 'ConsoleLogin' AND lower(json_extract_scalar(additionaleventdata, '$.MFAUsed')) = 'no' AND lower(useridentity.type) = 'iamuser' AND lower(json_extract_scalar(responseelements, '$.ConsoleLogin')) = 'success')
ORDER BY eventtime DESC
