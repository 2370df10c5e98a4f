//! CyberArk Central Credential Provider client (in progress).
