//! The object-store port: S3 through the AWS SDK, or a local directory.
