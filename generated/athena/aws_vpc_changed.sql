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
WHERE (eventsource = 'ec2.amazonaws.com' AND (eventname IN ('CreateVpc', 'DeleteVpc', 'ModifyVpcAttribute', 'AcceptVpcPeeringConnection', 'CreateVpcPeeringConnection', 'DeleteVpcPeeringConnection', 'RejectVpcPeeringConnection', 'AttachClassicLinkVpc', 'DetachClassicLinkVpc', 'DisableVpcClassicLink', 'EnableVpcClassicLink')))
ORDER BY eventtime DESC
