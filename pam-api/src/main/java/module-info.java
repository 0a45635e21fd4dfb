/**
 * The service provider interfaces of inferpam: identity, credentials, masking, recording,
 * approvals and quotas, with the values they exchange. Depends on the JDK alone.
 */
module dev.inferpam.api {
  exports dev.inferpam.api;
}
