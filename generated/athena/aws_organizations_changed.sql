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
WHERE (eventsource = 'organizations.amazonaws.com' AND (eventname IN ('AcceptHandshake', 'AttachPolicy', 'CreateAccount', 'CreateOrganizationalUnit', 'CreatePolicy', 'DeclineHandshake', 'DeleteOrganization', 'DeleteOrganizationalUnit', 'DeletePolicy', 'DetachPolicy', 'DisablePolicyType', 'EnablePolicyType', 'InviteAccountToOrganization', 'LeaveOrganization', 'MoveAccount', 'RemoveAccountFromOrganization', 'UpdatePolicy', 'UpdateOrganizationalUnit')))
ORDER BY eventtime DESC
