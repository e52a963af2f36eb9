//! Which S3 keys are parameter files: `train/**/*.json`, and nothing that could escape or confuse.

use std::fmt;

/// Why a key is not a parameter file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    NotUnderTrain,
    NotJson,
    DotSegment,
    EmptySegment,
    ControlCharacter,
}

impl fmt::Display for KeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotUnderTrain => "parameter files live under train/",
            Self::NotJson => "parameter files end in .json",
            Self::DotSegment => "a path segment is . or ..",
            Self::EmptySegment => "a path segment is empty (//)",
            Self::ControlCharacter => "the key contains a control character",
        })
    }
}

/// Accepts `train/<segments>/<name>.json` (the folder may be absent). Unicode, spaces and `+` are fine;
/// `.`/`..` segments, empty segments and control characters are not, because keys become folder
/// prefixes for data and names in logs.
pub fn check_config_key(key: &str) -> Result<(), KeyRejection> {
    if key.chars().any(char::is_control) {
        return Err(KeyRejection::ControlCharacter);
    }
    let Some(rest) = key.strip_prefix("train/") else {
        return Err(KeyRejection::NotUnderTrain);
    };
    if !key.ends_with(".json") {
        return Err(KeyRejection::NotJson);
    }
    for segment in rest.split('/') {
        match segment {
            "" => return Err(KeyRejection::EmptySegment),
            "." | ".." => return Err(KeyRejection::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_parameter_files() {
        for key in [
            "train/config.json",
            "train/dsg/config.json",
            "train/a/b/c/config.json",
            "train/my file+x/ünïcødé.json",
            "train/dsg/.json",
        ] {
            assert_eq!(check_config_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for (key, why) in [
            ("other/dsg/config.json", KeyRejection::NotUnderTrain),
            ("train.json", KeyRejection::NotUnderTrain),
            ("/train/x.json", KeyRejection::NotUnderTrain),
            ("train/dsg/data.csv", KeyRejection::NotJson),
            ("train/../x.json", KeyRejection::DotSegment),
            ("train/a/./x.json", KeyRejection::DotSegment),
            ("train//x.json", KeyRejection::EmptySegment),
            ("train/a/\u{0}x.json", KeyRejection::ControlCharacter),
            ("train/a/x\n.json", KeyRejection::ControlCharacter),
        ] {
            assert_eq!(check_config_key(key), Err(why), "{key}");
        }
    }

    proptest::proptest! {
        #[test]
        fn accepted_keys_never_escape_train(key in "train/[a-z./]{0,20}\\.json") {
            if check_config_key(&key).is_ok() {
                proptest::prop_assert!(!key.split('/').any(|s| s == ".." || s == "." || s.is_empty()));
            }
        }
    }
}
