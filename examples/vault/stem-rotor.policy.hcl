# Vault policy for stem-rotor: read and CAS-write the signing secrets, nothing else.
# KV v2 data paths (the mount is "secret").
path "secret/data/stem/billing/*" {
  capabilities = ["read", "create", "update"]
}

# stem-rotor checks that the mount is KV v2 (KV v1 silently ignores check-and-set).
path "sys/internal/ui/mounts/secret/*" {
  capabilities = ["read"]
}
