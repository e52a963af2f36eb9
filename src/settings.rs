//! Service settings: `config/default.toml` < an optional file < `PERSONALIZE_OPS__*` environment variables.
//!
//! The defaults are compiled in (the same text as `config/default.toml`), so the binary works from any
//! directory. Every struct denies unknown keys: a misspelt setting is an error at start-up, never a
//! silently ignored value.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The defaults, identical to the shipped `config/default.toml`.
pub const DEFAULTS_TOML: &str = include_str!("../config/default.toml");

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "PERSONALIZE_OPS";

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid setting {key}: {message}")]
    Value { key: &'static str, message: String },
}

/// All settings of the service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Logging: level filter and output format.
    pub log: LogSettings,
    /// What the service passes to Personalize on the user's behalf (roles, KMS).
    pub personalize: PersonalizeSettings,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Default `EnvFilter` directive when `RUST_LOG` is not set.
    pub level: String,
    /// `auto`, `human` or `json`.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON lines otherwise.
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Settings passed to Personalize. Role ARNs come from here, never from a parameter file, so an uploaded
/// file cannot make Personalize assume an arbitrary role.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PersonalizeSettings {
    /// Role Personalize assumes to read import data (`CreateDatasetImportJob.roleArn`).
    pub import_role_arn: String,
    /// Role for batch inference jobs.
    pub batch_inference_role_arn: String,
    /// Role for batch segment jobs.
    pub batch_segment_role_arn: String,
    /// Role Personalize assumes to use the KMS key of new dataset groups.
    pub kms_role_arn: String,
    /// KMS key for new dataset groups.
    pub kms_key_arn: String,
}

impl PersonalizeSettings {
    /// The value of a role setting, `None` when it is empty.
    pub fn non_empty(value: &str) -> Option<&str> {
        let v = value.trim();
        (!v.is_empty()).then_some(v)
    }
}

impl Settings {
    /// Loads the defaults, then `file` if given, then the environment (`PERSONALIZE_OPS__SECTION__KEY`).
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (tests must not mutate the process
    /// environment, which is shared by parallel tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS_TOML, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile {
                    path: path.to_path_buf(),
                });
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let prefix = format!("{ENV_PREFIX}__");
        let env_map: std::collections::HashMap<String, String> =
            env.into_iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env_map)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    /// Cross-field rules that serde cannot express.
    fn check(&self) -> Result<(), SettingsError> {
        let role = PersonalizeSettings::non_empty(&self.personalize.kms_role_arn);
        let key = PersonalizeSettings::non_empty(&self.personalize.kms_key_arn);
        if role.is_some() != key.is_some() {
            return Err(SettingsError::Value {
                key: "personalize.kms_key_arn",
                message: "kms_role_arn and kms_key_arn must be set together".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.log.format, LogFormat::Auto);
        assert_eq!(s.personalize.import_role_arn, "");
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_with_env(
            None,
            env(&[
                (
                    "PERSONALIZE_OPS__PERSONALIZE__IMPORT_ROLE_ARN",
                    "arn:aws:iam::123456789012:role/r",
                ),
                ("PERSONALIZE_OPS__LOG__FORMAT", "json"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.personalize.import_role_arn, "arn:aws:iam::123456789012:role/r");
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[log]\nlevel = \"debug\"\nformat = \"human\"\n").expect("write");
        let s = Settings::load_with_env(Some(&path), env(&[("PERSONALIZE_OPS__LOG__LEVEL", "warn")]))
            .expect("valid");
        assert_eq!(s.log.format, LogFormat::Human);
        assert_eq!(s.log.level, "warn");
    }

    #[test]
    fn unknown_keys_are_rejected_from_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[log]\nlevle = \"debug\"\n").expect("write");
        let err = Settings::load_with_env(Some(&path), env(&[])).expect_err("unknown key");
        assert!(err.to_string().contains("levle"), "{err}");

        let err = Settings::load_with_env(None, env(&[("PERSONALIZE_OPS__PERSONALIZE__ROLE", "x")]))
            .expect_err("unknown env key");
        assert!(err.to_string().contains("role"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            Settings::load_with_env(Some(Path::new("/nonexistent/s.toml")), env(&[])).expect_err("missing");
        assert!(matches!(err, SettingsError::MissingFile { .. }));
    }

    #[test]
    fn kms_settings_go_together() {
        let err = Settings::load_with_env(
            None,
            env(&[(
                "PERSONALIZE_OPS__PERSONALIZE__KMS_KEY_ARN",
                "arn:aws:kms:us-east-1:123456789012:key/k",
            )]),
        )
        .expect_err("half of kms");
        assert!(err.to_string().contains("kms_role_arn"), "{err}");
    }

    #[test]
    fn bad_enum_value_is_rejected() {
        let err = Settings::load_with_env(None, env(&[("PERSONALIZE_OPS__LOG__FORMAT", "xml")]))
            .expect_err("bad format");
        assert!(
            err.to_string().contains("xml") || err.to_string().contains("format"),
            "{err}"
        );
    }
}
