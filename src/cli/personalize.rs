//! Which Personalize a command asks: AWS through the SDK's default chain (checked first, so that a
//! machine without credentials gets one readable error at once), or the built-in Personalize of a
//! running `personalize-ops local DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use personalize_ops::aws::{AccessProblem, access_problems, timeout_config};
use personalize_ops::settings::{AwsSettings, Settings};

use super::{Context, EXIT_FAILURE, EXIT_USAGE};

/// Region of the built-in Personalize.
pub const LOCAL_REGION: &str = "us-east-1";

/// How long the credential chain may look before "no credentials" is said: enough for an instance
/// or container metadata service to answer, far less than the chain's own retries on a machine
/// that has none.
const CREDENTIALS_WAIT: Duration = Duration::from_secs(2);

/// The file holding the built-in Personalize's URL while `local DIR` runs.
pub fn url_path(dir: &Path) -> PathBuf {
    dir.join("emulator.url")
}

/// The file holding the time scale `local DIR` runs its built-in Personalize at (beside
/// [`url_path`], so that file stays a bare address for scripts).
pub fn scale_path(dir: &Path) -> PathBuf {
    dir.join("emulator.time_scale")
}

/// The time scale of a running `local`, from [`scale_path`]'s text. Missing or unreadable (a
/// release that did not write it) means scale 0, `local`'s default.
pub fn parse_scale(text: Option<&str>) -> f64 {
    text.and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(0.0)
}

/// SDK configuration for the built-in Personalize at `url` (static credentials, the local region),
/// with the attempt and operation timeouts of `aws` as against AWS: a call whose answer never comes
/// fails its attempt and is retried, instead of holding its group's pass (and every later pass of
/// the group) for ever.
pub async fn local_sdk_config(url: &str, aws: &AwsSettings) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .timeout_config(timeout_config(aws))
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "personalize-ops-local",
        ))
        .load()
        .await
}

/// The Personalize to ask and the settings to ask it with.
pub struct Target {
    pub sdk: aws_config::SdkConfig,
    pub settings: Settings,
    /// `Some(DIR)` for the built-in Personalize of `local DIR`.
    pub local: Option<PathBuf>,
}

/// The built-in Personalize of a running `local DIR` (its roles are placeholders, its polls paced
/// by [`Settings::for_builtin_personalize`] at the time scale that `local` runs at), or AWS. `Err(code)` after printing why
/// neither can be asked: 1 when `local DIR` is not running, 2 when AWS has no credentials or region.
pub async fn connect(
    command: &str,
    local: Option<&Path>,
    ctx: &Context,
) -> anyhow::Result<Result<Target, ExitCode>> {
    if let Some(dir) = local {
        let path = url_path(dir);
        let Ok(url) = std::fs::read_to_string(&path) else {
            eprintln!(
                "personalize-ops {command}: {} not found: is `personalize-ops local {}` running?",
                path.display(),
                dir.display()
            );
            return Ok(Err(ExitCode::from(EXIT_FAILURE)));
        };
        return Ok(Ok(Target {
            sdk: local_sdk_config(url.trim(), &ctx.settings.aws).await,
            // Polls paced like those of the running `local`: its built-in Personalize takes as
            // long as its time scale says.
            settings: ctx.settings.for_builtin_personalize(parse_scale(
                std::fs::read_to_string(scale_path(dir)).ok().as_deref(),
            )),
            local: Some(dir.to_path_buf()),
        }));
    }
    let sdk = personalize_ops::aws::sdk_config(&ctx.settings.aws).await;
    let problems = access_problems(&sdk, CREDENTIALS_WAIT).await;
    if !problems.is_empty() {
        eprintln!("{}", advice(command, &problems));
        return Ok(Err(ExitCode::from(EXIT_USAGE)));
    }
    Ok(Ok(Target {
        sdk,
        settings: ctx.settings.clone(),
        local: None,
    }))
}

/// What to tell a user whose machine cannot call AWS: the problems, how to fix them, and how to use
/// the built-in Personalize instead.
pub fn advice(command: &str, problems: &[AccessProblem]) -> String {
    let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let mut text = format!("personalize-ops {command}: {}.", said.join("; "));
    if problems
        .iter()
        .any(|p| matches!(p, AccessProblem::NoCredentials { .. }))
    {
        text.push_str(
            "\n  To use AWS, provide credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the \
             environment, or a profile (`aws configure`, then AWS_PROFILE=name), or an instance or task role.",
        );
    }
    if problems.contains(&AccessProblem::NoRegion) {
        text.push_str("\n  Set the region: AWS_REGION=us-east-1 (or `region` in ~/.aws/config).");
    }
    text.push_str(&format!(
        "\n  Or, without AWS: start `personalize-ops local DIR` (the built-in Personalize) and run \
         `personalize-ops {command} --local DIR …` against it."
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_file_gives_the_time_scale_and_defaults_to_zero() {
        assert_eq!(parse_scale(Some("0.001\n")), 0.001);
        // Written by nothing (an older release) or garbled: `local`'s default.
        assert_eq!(parse_scale(None), 0.0);
        assert_eq!(parse_scale(Some("-3")), 0.0);
        assert_eq!(parse_scale(Some("fast")), 0.0);
    }
}
