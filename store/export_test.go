package store

// Names of the raw layout, for tests that tamper with the file directly.
var (
	BucketMeta       = bucketMeta
	BucketFlows      = bucketFlows
	BucketSecrets    = bucketSecrets
	KeySchemaVersion = keySchemaVersion
	KeyRev           = keyRev
)
