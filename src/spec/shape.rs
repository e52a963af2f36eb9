//! The shape of a parameter file, declared once: the checker walks a file against it, and
//! `spec::json_schema` turns it into a JSON Schema for editors.
//!
//! A shape says which keys exist where, their types, ranges, patterns and enums, which are required,
//! and what to do with keys it does not know (an error, or a warning where the reference silently
//! ignored them). It mirrors the Personalize request shapes (the botocore service model,
//! 1.43.11) inside every `serviceConfig`. Rules that need more than one value at a time (recipes,
//! duplicates, inheritance, names) live in `spec::rules`.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::spec::avro;
use crate::spec::duration;
use crate::spec::filter;
use crate::spec::issues::{Findings, JsonPath, kind_of, snippet};
use crate::spec::schedule::Schedule;

/// What a value must look like.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Object(&'static Object),
    List(&'static List),
    Map(&'static MapShape),
    Text(Text),
    /// A string from a fixed set.
    Enum(&'static [&'static str]),
    Bool,
    /// A whole number (a JSON number with no fraction) within an `i32`-sized range.
    Int(IntRange),
    /// Any JSON number within a range.
    Number(NumberRange),
    /// A list of `{"tagKey", "tagValue"}` objects.
    Tags,
    /// An Avro record document (`schema.serviceConfig.schema`).
    AvroDocument,
}

/// An object with known keys.
#[derive(Debug)]
pub struct Object {
    pub description: &'static str,
    pub fields: &'static [Field],
    pub unknown: Unknown,
}

/// What to do with a key an object does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Between the sections: `key a.b is not an allowed key` (the reference's wording).
    Structural,
    /// Inside a `serviceConfig`: `Unknown parameter "x", must be one of: …` (botocore's wording).
    Parameter,
    /// Accepted with a warning that the key is ignored, as the reference silently ignored it.
    Ignored,
    /// `solutionVersion`: the reference's own message, with `name` now allowed.
    SolutionVersion,
}

/// One declared key.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub presence: Presence,
    pub description: &'static str,
}

/// Whether a key must, may or should not be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Optional,
    /// Missing → `Missing required parameter in input: "name"` (or `Missing required key …` between
    /// sections).
    Required,
    /// Missing → this message.
    RequiredSaying(&'static str),
    /// The reference overwrote it with its own value (ARNs, job names, paths); accepted with a warning
    /// that it is ignored.
    SetByService,
    /// The reference removed it with this message; accepted with the message as a warning.
    Removed(&'static str),
}

/// A list of values of one shape.
#[derive(Debug)]
pub struct List {
    pub item: Shape,
    pub max_items: Option<usize>,
}

/// An object used as a map from keys of one shape to values of another.
#[derive(Debug)]
pub struct MapShape {
    pub key: Shape,
    pub value: Shape,
    pub max_entries: Option<usize>,
}

/// A string with its constraints. Lengths count characters, as botocore does.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub min_len: usize,
    pub max_len: Option<usize>,
    pub pattern: Option<Pattern>,
    pub syntax: Syntax,
}

/// A string's own language, checked by its parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Plain,
    /// `cron(...)`, `rate(...)` or `delete`, through [`Schedule::parse`].
    Schedule,
    /// A `maxAge` text, through [`duration::parse_max_age`]; unreadable text is a warning (the
    /// reference drops it).
    MaxAge,
    /// A Personalize filter expression, through [`filter::parse`].
    FilterExpression,
}

/// An inclusive integer range; `None` ends are the `i32` limits of the API's integer type.
#[derive(Debug, Clone, Copy)]
pub struct IntRange {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// An inclusive number range.
#[derive(Debug, Clone, Copy)]
pub struct NumberRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The string patterns of the Personalize API, anchored at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Name,
    PersonalizeArn,
    RoleArn,
    KmsKeyArn,
    TagText,
    ColumnName,
    DatasetTypeName,
    AutoTrainingRate,
}

impl Pattern {
    /// The regular expression (also valid in a JSON Schema with Unicode patterns).
    pub fn regex_source(self) -> &'static str {
        match self {
            Self::Name => r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$",
            Self::PersonalizeArn => r"^arn:([a-z\d-]+):personalize:.*:.*:.+$",
            Self::RoleArn => r"^arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$",
            Self::KmsKeyArn => r"^arn:aws.*:kms:.*:[0-9]{12}:key/.*$",
            Self::TagText => r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$",
            Self::ColumnName => r"^[A-Za-z_][A-Za-z\d_]*$",
            Self::DatasetTypeName => r"^[A-Za-z_]+$",
            Self::AutoTrainingRate => r"^rate\(([1-9]|[12][0-9]|30) days?\)$",
        }
    }

    /// The rule in words, for messages.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Name => "letters, digits, - and _, starting with a letter or digit",
            Self::PersonalizeArn => "a Personalize ARN (arn:aws:personalize:…)",
            Self::RoleArn => "an IAM role ARN (arn:aws:iam::123456789012:role/…)",
            Self::KmsKeyArn => "a KMS key ARN (arn:aws:kms:region:123456789012:key/…)",
            Self::TagText => "letters, digits, spaces and _ . : / = + - @",
            Self::ColumnName => "letters, digits and _, not starting with a digit",
            Self::DatasetTypeName => "letters and _ (a dataset type such as Items)",
            Self::AutoTrainingRate => "rate(N days) with N from 1 to 30",
        }
    }

    fn regex(self) -> Option<&'static Regex> {
        static COMPILED: LazyLock<Vec<(Pattern, Regex)>> = LazyLock::new(|| {
            ALL_PATTERNS
                .iter()
                .filter_map(|&p| Regex::new(p.regex_source()).ok().map(|r| (p, r)))
                .collect()
        });
        COMPILED.iter().find(|(p, _)| *p == self).map(|(_, r)| r)
    }

    /// Whether `text` matches. (Every source compiles, as a test checks; were one not to, its
    /// values would pass here and Personalize would be the judge.)
    pub fn matches(self, text: &str) -> bool {
        self.regex().is_none_or(|r| r.is_match(text))
    }
}

const ALL_PATTERNS: [Pattern; 8] = [
    Pattern::Name,
    Pattern::PersonalizeArn,
    Pattern::RoleArn,
    Pattern::KmsKeyArn,
    Pattern::TagText,
    Pattern::ColumnName,
    Pattern::DatasetTypeName,
    Pattern::AutoTrainingRate,
];

/// Most tags a resource can carry.
pub const MAX_TAGS: usize = 50;
/// Tag key length limits.
pub const TAG_KEY_LEN: (usize, usize) = (1, 128);
/// Tag value length limits.
pub const TAG_VALUE_LEN: (usize, usize) = (0, 256);

// ---------------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------------

const fn text(min_len: usize, max_len: usize) -> Shape {
    Shape::Text(Text {
        min_len,
        max_len: Some(max_len),
        pattern: None,
        syntax: Syntax::Plain,
    })
}

const fn patterned(min_len: usize, max_len: usize, pattern: Pattern) -> Shape {
    Shape::Text(Text {
        min_len,
        max_len: Some(max_len),
        pattern: Some(pattern),
        syntax: Syntax::Plain,
    })
}

const NAME: Shape = patterned(1, 63, Pattern::Name);
const ARN: Shape = patterned(0, 256, Pattern::PersonalizeArn);
const PARAMETER_NAME: Shape = text(0, 256);
const PARAMETER_VALUE: Shape = text(0, 1000);
const SCHEDULE: Shape = Shape::Text(Text {
    min_len: 1,
    max_len: Some(256),
    pattern: None,
    syntax: Syntax::Schedule,
});
const MAX_AGE: Shape = Shape::Text(Text {
    min_len: 0,
    max_len: None,
    pattern: None,
    syntax: Syntax::MaxAge,
});
const TPS: Shape = Shape::Int(IntRange {
    min: Some(1),
    max: None,
});

const fn field(name: &'static str, shape: Shape, description: &'static str) -> Field {
    Field {
        name,
        shape,
        presence: Presence::Optional,
        description,
    }
}

const fn required(name: &'static str, shape: Shape, description: &'static str) -> Field {
    Field {
        name,
        shape,
        presence: Presence::Required,
        description,
    }
}

const fn set_by_service(name: &'static str, description: &'static str) -> Field {
    Field {
        name,
        shape: Shape::Bool,
        presence: Presence::SetByService,
        description,
    }
}

const TAGS: Field = field(
    "tags",
    Shape::Tags,
    "Tags of this resource ({\"tagKey\", \"tagValue\"}, at most 50). Without this key the root `tags` \
     apply; an explicit list (even []) replaces them.",
);

const DATASET_GROUP_ARN_SET: Field = set_by_service(
    "datasetGroupArn",
    "Set by personalize-ops to this file's dataset group; a value here is ignored.",
);

static HYPER_PARAMETERS: MapShape = MapShape {
    key: PARAMETER_NAME,
    value: PARAMETER_VALUE,
    max_entries: Some(100),
};

static RANKING_INFLUENCE: MapShape = MapShape {
    key: Shape::Enum(&["POPULARITY", "FRESHNESS"]),
    value: Shape::Number(NumberRange {
        min: Some(0.0),
        max: Some(1.0),
    }),
    max_entries: None,
};

static COLUMN_NAMES: List = List {
    item: patterned(0, 150, Pattern::ColumnName),
    max_items: Some(50),
};

static DATASET_COLUMNS: MapShape = MapShape {
    key: patterned(0, 256, Pattern::DatasetTypeName),
    value: Shape::List(&COLUMN_NAMES),
    max_entries: Some(3),
};

static TRAINING_DATA_CONFIG: Object = Object {
    description: "Columns to leave out of (or keep in) training, per dataset type.",
    fields: &[
        field(
            "excludedDatasetColumns",
            Shape::Map(&DATASET_COLUMNS),
            "Dataset type (Interactions, Items, Users) → columns Personalize ignores in training.",
        ),
        field(
            "includedDatasetColumns",
            Shape::Map(&DATASET_COLUMNS),
            "Dataset type → the only columns Personalize uses in training.",
        ),
    ],
    unknown: Unknown::Parameter,
};

// ---------------------------------------------------------------------------------------------------
// solutionConfig
// ---------------------------------------------------------------------------------------------------

static HPO_OBJECTIVE: Object = Object {
    description: "The metric to optimise in HPO (accepted by the API, ignored by the service).",
    fields: &[
        field("type", text(0, 256), "Maximize or Minimize."),
        field("metricName", text(0, 256), "The metric to optimise."),
        field(
            "metricRegex",
            text(0, 256),
            "A regex that finds the metric in the logs.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static HPO_RESOURCE_CONFIG: Object = Object {
    description: "How many training jobs HPO may run.",
    fields: &[
        field(
            "maxNumberOfTrainingJobs",
            text(0, 256),
            "Most training jobs in total, as a string (at most \"40\").",
        ),
        field(
            "maxParallelTrainingJobs",
            text(0, 256),
            "Most training jobs at once, as a string (at most \"10\").",
        ),
    ],
    unknown: Unknown::Parameter,
};

static INTEGER_RANGE: Object = Object {
    description: "An integer hyperparameter range.",
    fields: &[
        field("name", PARAMETER_NAME, "The hyperparameter."),
        field(
            "minValue",
            Shape::Int(IntRange {
                min: Some(-1_000_000),
                max: None,
            }),
            "Smallest value.",
        ),
        field(
            "maxValue",
            Shape::Int(IntRange {
                min: None,
                max: Some(1_000_000),
            }),
            "Largest value.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static CONTINUOUS_RANGE: Object = Object {
    description: "A continuous hyperparameter range.",
    fields: &[
        field("name", PARAMETER_NAME, "The hyperparameter."),
        field(
            "minValue",
            Shape::Number(NumberRange {
                min: Some(-1_000_000.0),
                max: None,
            }),
            "Smallest value.",
        ),
        field(
            "maxValue",
            Shape::Number(NumberRange {
                min: Some(-1_000_000.0),
                max: None,
            }),
            "Largest value.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static CATEGORICAL_VALUES: List = List {
    item: text(0, 1000),
    max_items: Some(100),
};

static CATEGORICAL_RANGE: Object = Object {
    description: "A categorical hyperparameter range.",
    fields: &[
        field("name", PARAMETER_NAME, "The hyperparameter."),
        field("values", Shape::List(&CATEGORICAL_VALUES), "The values to try."),
    ],
    unknown: Unknown::Parameter,
};

static INTEGER_RANGES: List = List {
    item: Shape::Object(&INTEGER_RANGE),
    max_items: Some(100),
};
static CONTINUOUS_RANGES: List = List {
    item: Shape::Object(&CONTINUOUS_RANGE),
    max_items: Some(100),
};
static CATEGORICAL_RANGES: List = List {
    item: Shape::Object(&CATEGORICAL_RANGE),
    max_items: Some(100),
};

static HYPER_PARAMETER_RANGES: Object = Object {
    description: "The hyperparameter ranges HPO searches.",
    fields: &[
        field(
            "integerHyperParameterRanges",
            Shape::List(&INTEGER_RANGES),
            "Integer ranges.",
        ),
        field(
            "continuousHyperParameterRanges",
            Shape::List(&CONTINUOUS_RANGES),
            "Continuous ranges.",
        ),
        field(
            "categoricalHyperParameterRanges",
            Shape::List(&CATEGORICAL_RANGES),
            "Categorical ranges.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static HPO_CONFIG: Object = Object {
    description: "Hyperparameter optimisation settings (used when performHPO is true).",
    fields: &[
        field(
            "hpoObjective",
            Shape::Object(&HPO_OBJECTIVE),
            "The metric to optimise.",
        ),
        field(
            "hpoResourceConfig",
            Shape::Object(&HPO_RESOURCE_CONFIG),
            "Training job limits.",
        ),
        field(
            "algorithmHyperParameterRanges",
            Shape::Object(&HYPER_PARAMETER_RANGES),
            "Ranges to search.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static RECIPE_LIST: List = List {
    item: ARN,
    max_items: Some(100),
};

static AUTO_ML_CONFIG: Object = Object {
    description: "AutoML settings (AutoML itself is no longer supported; the API still takes these).",
    fields: &[
        field("metricName", text(0, 256), "The metric to optimise."),
        field(
            "recipeList",
            Shape::List(&RECIPE_LIST),
            "Recipe ARNs to choose from.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static EVENT_PARAMETERS: Object = Object {
    description: "How one event type counts in training.",
    fields: &[
        field("eventType", text(0, 256), "The event type."),
        field(
            "eventValueThreshold",
            Shape::Number(NumberRange { min: None, max: None }),
            "Events with a lower EVENT_VALUE are left out.",
        ),
        field(
            "weight",
            Shape::Number(NumberRange {
                min: Some(0.0),
                max: Some(1.0),
            }),
            "The weight of this event type, 0 to 1.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static EVENT_PARAMETERS_LIST: List = List {
    item: Shape::Object(&EVENT_PARAMETERS),
    max_items: Some(10),
};

static EVENTS_CONFIG: Object = Object {
    description: "Per-event-type weights and thresholds.",
    fields: &[field(
        "eventParametersList",
        Shape::List(&EVENT_PARAMETERS_LIST),
        "At most 10 event types.",
    )],
    unknown: Unknown::Parameter,
};

static OPTIMIZATION_OBJECTIVE: Object = Object {
    description: "An additional business objective.",
    fields: &[
        field(
            "itemAttribute",
            text(1, 150),
            "The numeric Items column to optimise for.",
        ),
        field(
            "objectiveSensitivity",
            Shape::Enum(&["LOW", "MEDIUM", "HIGH", "OFF"]),
            "How much the objective weighs against relevance.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static AUTO_TRAINING_CONFIG: Object = Object {
    description: "How often Personalize retrains by itself when performAutoTraining is true.",
    fields: &[field(
        "schedulingExpression",
        patterned(1, 16, Pattern::AutoTrainingRate),
        "rate(N days), N from 1 to 30 (Personalize's default is rate(7 days)).",
    )],
    unknown: Unknown::Parameter,
};

static SOLUTION_CONFIG: Object = Object {
    description: "Personalize SolutionConfig: recipe-specific training settings.",
    fields: &[
        field(
            "eventValueThreshold",
            text(0, 256),
            "Interactions with a lower EVENT_VALUE are left out of training.",
        ),
        field("hpoConfig", Shape::Object(&HPO_CONFIG), "HPO settings."),
        field(
            "algorithmHyperParameters",
            Shape::Map(&HYPER_PARAMETERS),
            "Hyperparameter name → value (strings).",
        ),
        field(
            "featureTransformationParameters",
            Shape::Map(&HYPER_PARAMETERS),
            "Feature transformation parameter → value (strings).",
        ),
        field("autoMLConfig", Shape::Object(&AUTO_ML_CONFIG), "AutoML settings."),
        field(
            "eventsConfig",
            Shape::Object(&EVENTS_CONFIG),
            "Event type weights (aws-user-personalization-v2, aws-personalized-ranking-v2).",
        ),
        field(
            "optimizationObjective",
            Shape::Object(&OPTIMIZATION_OBJECTIVE),
            "An additional objective.",
        ),
        field(
            "trainingDataConfig",
            Shape::Object(&TRAINING_DATA_CONFIG),
            "Columns used in training.",
        ),
        field(
            "autoTrainingConfig",
            Shape::Object(&AUTO_TRAINING_CONFIG),
            "Automatic training frequency.",
        ),
    ],
    unknown: Unknown::Parameter,
};

// ---------------------------------------------------------------------------------------------------
// Solutions and their children
// ---------------------------------------------------------------------------------------------------

static SOLUTION_VERSION: Object = Object {
    description: "How versions of this solution are trained (CreateSolutionVersion).",
    fields: &[
        field(
            "name",
            NAME,
            "Version name (optional). Versions are unnamed without it.",
        ),
        field(
            "trainingMode",
            Shape::Enum(&["FULL", "UPDATE"]),
            "FULL (default) or UPDATE. Used by the scheduled `full` retraining; UPDATE needs \
             aws-user-personalization or aws-hrnn-coldstart.",
        ),
        TAGS,
    ],
    unknown: Unknown::SolutionVersion,
};

static SOLUTION_SERVICE_CONFIG: Object = Object {
    description: "CreateSolution members.",
    fields: &[
        required(
            "name",
            NAME,
            "Solution name (1-63 letters, digits, - and _), unique in this file.",
        ),
        field(
            "recipeArn",
            ARN,
            "The recipe, e.g. arn:aws:personalize:::recipe/aws-user-personalization.",
        ),
        field("performHPO", Shape::Bool, "Tune hyperparameters (default false)."),
        Field {
            name: "performAutoML",
            shape: Shape::Bool,
            presence: Presence::Removed(
                "performAutoML is not a valid configuration parameter - proceeding to create the \
                 solution without this feature. Set recipeArn instead.",
            ),
            description: "No longer supported: removed with a warning, as the reference did.",
        },
        field(
            "performAutoTraining",
            Shape::Bool,
            "Let Personalize retrain every 7 days by itself (its default is true).",
        ),
        field(
            "performIncrementalUpdate",
            Shape::Bool,
            "Update the model with new data between trainings (aws-semantic-similarity only).",
        ),
        field(
            "eventType",
            text(0, 256),
            "Train only on interactions of this event type.",
        ),
        field(
            "solutionConfig",
            Shape::Object(&SOLUTION_CONFIG),
            "Recipe-specific settings.",
        ),
        TAGS,
        field(
            "solutionVersion",
            Shape::Object(&SOLUTION_VERSION),
            "Settings of the versions trained for this solution.",
        ),
        DATASET_GROUP_ARN_SET,
    ],
    unknown: Unknown::Parameter,
};

static SOLUTION_SCHEDULES: Object = Object {
    description: "When to retrain. Other keys are ignored (with a warning), as in the reference.",
    fields: &[
        field(
            "full",
            SCHEDULE,
            "Retrain with the solution version's training mode and update the campaigns: \
             cron(min hour day-of-month month day-of-week year), rate(N unit) or \"delete\".",
        ),
        field(
            "update",
            SCHEDULE,
            "Retrain in UPDATE mode (aws-user-personalization, aws-hrnn-coldstart) and update the \
             campaigns.",
        ),
    ],
    unknown: Unknown::Ignored,
};

/// The offline metrics `GetSolutionMetrics` reports (higher is better for all of them); the
/// promotion gate compares a new version with the serving one on one of these.
pub const SOLUTION_METRICS: &[&str] = &[
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
    "average_rewards_at_k",
    "normalized_discounted_cumulative_gain_with_event_weights_at_k",
    "trend_prediction_accuracy",
    "hit",
    "recall",
    "precision",
    "auc",
];

static PROMOTION: Object = Object {
    description: "Promote a new version to the solution's campaigns and batch jobs only when it is \
                  at least as good as the serving one.",
    fields: &[
        required(
            "metric",
            Shape::Enum(SOLUTION_METRICS),
            "The GetSolutionMetrics metric compared, e.g. \
             normalized_discounted_cumulative_gain_at_10.",
        ),
        field(
            "minDelta",
            Shape::Number(NumberRange { min: None, max: None }),
            "How much better the new version must be (default 0: at least as good).",
        ),
    ],
    unknown: Unknown::Structural,
};

static SOLUTION_WORKFLOW: Object = Object {
    description: "What personalize-ops does with this solution over time.",
    fields: &[
        field(
            "schedules",
            Shape::Object(&SOLUTION_SCHEDULES),
            "Retraining schedules.",
        ),
        field(
            "retrainOnNewData",
            Shape::Bool,
            "Also retrain after every import that brought new data (default false).",
        ),
        field(
            "promotion",
            Shape::Object(&PROMOTION),
            "The promotion gate: a new version serves only when its metric is at least the \
             serving version's plus minDelta.",
        ),
    ],
    unknown: Unknown::Structural,
};

static CAMPAIGN_CONFIG: Object = Object {
    description: "Personalize CampaignConfig.",
    fields: &[
        field(
            "itemExplorationConfig",
            Shape::Map(&HYPER_PARAMETERS),
            "explorationWeight (\"0\"..\"1\") and explorationItemAgeCutOff (days), for \
             User-Personalization.",
        ),
        field(
            "enableMetadataWithRecommendations",
            Shape::Bool,
            "Return item metadata with recommendations.",
        ),
        field(
            "syncWithLatestSolutionVersion",
            Shape::Bool,
            "Follow the solution's latest version automatically.",
        ),
        field(
            "rankingInfluence",
            Shape::Map(&RANKING_INFLUENCE),
            "POPULARITY / FRESHNESS → weight 0..1.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static CAMPAIGN_SERVICE_CONFIG: Object = Object {
    description: "CreateCampaign members.",
    fields: &[
        required("name", NAME, "Campaign name, unique in this file."),
        field(
            "minProvisionedTPS",
            TPS,
            "Provisioned transactions per second, at least 1 (default 1). Billed.",
        ),
        field(
            "campaignConfig",
            Shape::Object(&CAMPAIGN_CONFIG),
            "Campaign settings.",
        ),
        TAGS,
        set_by_service(
            "solutionVersionArn",
            "Set by personalize-ops to the solution's newest version; a value here is ignored.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static CAMPAIGN: Object = Object {
    description: "A campaign serving the solution's newest version.",
    fields: &[required(
        "serviceConfig",
        Shape::Object(&CAMPAIGN_SERVICE_CONFIG),
        "CreateCampaign members.",
    )],
    unknown: Unknown::Structural,
};

static CAMPAIGNS: List = List {
    item: Shape::Object(&CAMPAIGN),
    max_items: None,
};

static BATCH_INFERENCE_JOB_CONFIG: Object = Object {
    description: "Personalize BatchInferenceJobConfig.",
    fields: &[
        field(
            "itemExplorationConfig",
            Shape::Map(&HYPER_PARAMETERS),
            "explorationWeight and explorationItemAgeCutOff, for User-Personalization.",
        ),
        field(
            "rankingInfluence",
            Shape::Map(&RANKING_INFLUENCE),
            "POPULARITY / FRESHNESS → weight 0..1.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static FIELDS_FOR_THEME_GENERATION: Object = Object {
    description: "Columns used to generate themes.",
    fields: &[required(
        "itemName",
        patterned(0, 150, Pattern::ColumnName),
        "The Items column holding item names.",
    )],
    unknown: Unknown::Parameter,
};

static THEME_GENERATION_CONFIG: Object = Object {
    description: "Theme generation settings (batchInferenceJobMode THEME_GENERATION).",
    fields: &[required(
        "fieldsForThemeGeneration",
        Shape::Object(&FIELDS_FOR_THEME_GENERATION),
        "Columns for themes.",
    )],
    unknown: Unknown::Parameter,
};

const BATCH_SET_BY_SERVICE: [Field; 5] = [
    set_by_service(
        "jobName",
        "Generated: batch_<solution>_<timestamp> (or batch_<solution>_<n>_<timestamp> when the \
         solution has several jobs of this kind); a value here is ignored.",
    ),
    set_by_service(
        "solutionVersionArn",
        "Set by personalize-ops to the solution's newest version; a value here is ignored.",
    ),
    set_by_service("roleArn", "Taken from the settings; a value here is ignored."),
    set_by_service(
        "jobInput",
        "Always s3://<bucket>/batch/<group>/<solution>/job_config.json; a value here is ignored.",
    ),
    set_by_service(
        "jobOutput",
        "Always s3://<bucket>/batch/<group>/<solution>/<jobName>/; a value here is ignored.",
    ),
];

static BATCH_INFERENCE_SERVICE_CONFIG: Object = Object {
    description: "CreateBatchInferenceJob members.",
    fields: &[
        field(
            "numResults",
            Shape::Int(IntRange {
                min: Some(1),
                max: Some(500),
            }),
            "Recommendations per input line, 1 to 500 (Personalize's default is 25).",
        ),
        field(
            "filterArn",
            ARN,
            "The full ARN of a filter (…:filter/<name>), usually one declared in `filters`.",
        ),
        field(
            "batchInferenceJobConfig",
            Shape::Object(&BATCH_INFERENCE_JOB_CONFIG),
            "Job settings.",
        ),
        field(
            "batchInferenceJobMode",
            Shape::Enum(&["BATCH_INFERENCE", "THEME_GENERATION"]),
            "BATCH_INFERENCE (default) or THEME_GENERATION (aws-similar-items).",
        ),
        field(
            "themeGenerationConfig",
            Shape::Object(&THEME_GENERATION_CONFIG),
            "Theme settings.",
        ),
        TAGS,
        BATCH_SET_BY_SERVICE[0],
        BATCH_SET_BY_SERVICE[1],
        BATCH_SET_BY_SERVICE[2],
        BATCH_SET_BY_SERVICE[3],
        BATCH_SET_BY_SERVICE[4],
    ],
    unknown: Unknown::Parameter,
};

static BATCH_SEGMENT_SERVICE_CONFIG: Object = Object {
    description: "CreateBatchSegmentJob members.",
    fields: &[
        field(
            "numResults",
            Shape::Int(IntRange {
                min: Some(1),
                max: Some(5_000_000),
            }),
            "Users per segment, 1 to 5,000,000.",
        ),
        field("filterArn", ARN, "The full ARN of a filter (…:filter/<name>)."),
        TAGS,
        BATCH_SET_BY_SERVICE[0],
        BATCH_SET_BY_SERVICE[1],
        BATCH_SET_BY_SERVICE[2],
        BATCH_SET_BY_SERVICE[3],
        BATCH_SET_BY_SERVICE[4],
    ],
    unknown: Unknown::Parameter,
};

static BATCH_WORKFLOW: Object = Object {
    description: "When to run the job again.",
    fields: &[
        field(
            "schedule",
            SCHEDULE,
            "cron(min hour day-of-month month day-of-week year), rate(N unit) or \"delete\".",
        ),
        field(
            "maxAge",
            MAX_AGE,
            "How old an existing job may be and still count as current, e.g. \"1 day\".",
        ),
    ],
    unknown: Unknown::Structural,
};

static BATCH_INFERENCE_JOB: Object = Object {
    description: "A batch inference job run after each new version (and on its schedule).",
    fields: &[
        field(
            "serviceConfig",
            Shape::Object(&BATCH_INFERENCE_SERVICE_CONFIG),
            "CreateBatchInferenceJob members; {} is typical.",
        ),
        field(
            "workflowConfig",
            Shape::Object(&BATCH_WORKFLOW),
            "Schedule and maxAge.",
        ),
    ],
    unknown: Unknown::Structural,
};

static BATCH_SEGMENT_JOB: Object = Object {
    description: "A batch segment job (USER_SEGMENTATION recipes) run after each new version.",
    fields: &[
        field(
            "serviceConfig",
            Shape::Object(&BATCH_SEGMENT_SERVICE_CONFIG),
            "CreateBatchSegmentJob members; {} is typical.",
        ),
        field(
            "workflowConfig",
            Shape::Object(&BATCH_WORKFLOW),
            "Schedule and maxAge.",
        ),
    ],
    unknown: Unknown::Structural,
};

static BATCH_INFERENCE_JOBS: List = List {
    item: Shape::Object(&BATCH_INFERENCE_JOB),
    max_items: None,
};

static BATCH_SEGMENT_JOBS: List = List {
    item: Shape::Object(&BATCH_SEGMENT_JOB),
    max_items: None,
};

static SOLUTION: Object = Object {
    description: "A solution: trained on schedule, deployed to its campaigns, used by its batch jobs.",
    fields: &[
        required(
            "serviceConfig",
            Shape::Object(&SOLUTION_SERVICE_CONFIG),
            "CreateSolution members plus solutionVersion.",
        ),
        field(
            "workflowConfig",
            Shape::Object(&SOLUTION_WORKFLOW),
            "Schedules and retraining policy.",
        ),
        field(
            "campaigns",
            Shape::List(&CAMPAIGNS),
            "Campaigns of this solution.",
        ),
        field(
            "batchInferenceJobs",
            Shape::List(&BATCH_INFERENCE_JOBS),
            "Batch inference jobs of this solution.",
        ),
        field(
            "batchSegmentJobs",
            Shape::List(&BATCH_SEGMENT_JOBS),
            "Batch segment jobs of this solution.",
        ),
    ],
    unknown: Unknown::Structural,
};

static SOLUTIONS: List = List {
    item: Shape::Object(&SOLUTION),
    max_items: None,
};

// ---------------------------------------------------------------------------------------------------
// Recommenders, filters, event tracker
// ---------------------------------------------------------------------------------------------------

static RECOMMENDER_CONFIG: Object = Object {
    description: "Personalize RecommenderConfig.",
    fields: &[
        field(
            "itemExplorationConfig",
            Shape::Map(&HYPER_PARAMETERS),
            "explorationWeight and explorationItemAgeCutOff.",
        ),
        field(
            "minRecommendationRequestsPerSecond",
            TPS,
            "Provisioned requests per second, at least 1 (default 1). Billed.",
        ),
        field(
            "trainingDataConfig",
            Shape::Object(&TRAINING_DATA_CONFIG),
            "Columns used in training.",
        ),
        field(
            "enableMetadataWithRecommendations",
            Shape::Bool,
            "Return item metadata with recommendations.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static RECOMMENDER_SERVICE_CONFIG: Object = Object {
    description: "CreateRecommender members.",
    fields: &[
        required("name", NAME, "Recommender name, unique in this file."),
        required(
            "recipeArn",
            ARN,
            "A use case of the group's domain, e.g. \
             arn:aws:personalize:::recipe/aws-ecomm-popular-items-by-views.",
        ),
        field(
            "recommenderConfig",
            Shape::Object(&RECOMMENDER_CONFIG),
            "Recommender settings.",
        ),
        TAGS,
        DATASET_GROUP_ARN_SET,
    ],
    unknown: Unknown::Parameter,
};

static RECOMMENDER: Object = Object {
    description: "A recommender of a Domain dataset group.",
    fields: &[required(
        "serviceConfig",
        Shape::Object(&RECOMMENDER_SERVICE_CONFIG),
        "CreateRecommender members.",
    )],
    unknown: Unknown::Structural,
};

static RECOMMENDERS: List = List {
    item: Shape::Object(&RECOMMENDER),
    max_items: None,
};

static FILTER_SERVICE_CONFIG: Object = Object {
    description: "CreateFilter members.",
    fields: &[
        required("name", NAME, "Filter name, unique in this file."),
        required(
            "filterExpression",
            Shape::Text(Text {
                min_len: 1,
                max_len: Some(2500),
                pattern: None,
                syntax: Syntax::FilterExpression,
            }),
            "e.g. INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"click\")",
        ),
        TAGS,
        DATASET_GROUP_ARN_SET,
    ],
    unknown: Unknown::Parameter,
};

static FILTER: Object = Object {
    description: "A filter of the dataset group.",
    fields: &[required(
        "serviceConfig",
        Shape::Object(&FILTER_SERVICE_CONFIG),
        "CreateFilter members.",
    )],
    unknown: Unknown::Structural,
};

static FILTERS: List = List {
    item: Shape::Object(&FILTER),
    max_items: None,
};

static EVENT_TRACKER_SERVICE_CONFIG: Object = Object {
    description: "CreateEventTracker members.",
    fields: &[
        field(
            "name",
            NAME,
            "Event tracker name. Without a name no tracker is created (as in the reference).",
        ),
        TAGS,
        DATASET_GROUP_ARN_SET,
    ],
    unknown: Unknown::Parameter,
};

static EVENT_TRACKER: Object = Object {
    description: "The dataset group's event tracker (at most one per group).",
    fields: &[field(
        "serviceConfig",
        Shape::Object(&EVENT_TRACKER_SERVICE_CONFIG),
        "CreateEventTracker members.",
    )],
    unknown: Unknown::Structural,
};

// ---------------------------------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------------------------------

static DATASET_SERVICE_CONFIG: Object = Object {
    description: "CreateDataset members.",
    fields: &[
        required("name", NAME, "Dataset name."),
        TAGS,
        DATASET_GROUP_ARN_SET,
        set_by_service(
            "schemaArn",
            "Set by personalize-ops from the schema block; a value here is ignored.",
        ),
        set_by_service(
            "datasetType",
            "Set by personalize-ops from the key (interactions, users, items); a value here is \
             ignored.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static DATASET_BLOCK: Object = Object {
    description: "The dataset.",
    fields: &[required(
        "serviceConfig",
        Shape::Object(&DATASET_SERVICE_CONFIG),
        "CreateDataset members.",
    )],
    unknown: Unknown::Structural,
};

static SCHEMA_SERVICE_CONFIG: Object = Object {
    description: "CreateSchema members.",
    fields: &[
        Field {
            name: "name",
            shape: NAME,
            presence: Presence::RequiredSaying("The schema name is missing"),
            description: "Schema name (schemas are account-wide; one name, one document).",
        },
        Field {
            name: "schema",
            shape: Shape::AvroDocument,
            presence: Presence::RequiredSaying("The schema is missing"),
            description: "The Avro record: {\"type\": \"record\", \"name\": …, \"fields\": [...]}.",
        },
        field(
            "domain",
            Shape::Enum(&["ECOMMERCE", "VIDEO_ON_DEMAND"]),
            "The domain of a Domain dataset group's schema.",
        ),
    ],
    unknown: Unknown::Parameter,
};

static SCHEMA_BLOCK: Object = Object {
    description: "The dataset's schema.",
    fields: &[required(
        "serviceConfig",
        Shape::Object(&SCHEMA_SERVICE_CONFIG),
        "CreateSchema members.",
    )],
    unknown: Unknown::Structural,
};

static DATASET: Object = Object {
    description: "A dataset and its schema. Data is read from <config folder>/<type>/*.csv or \
                  <config folder>/<type>.csv.",
    fields: &[
        required("dataset", Shape::Object(&DATASET_BLOCK), "The dataset."),
        field(
            "schema",
            Shape::Object(&SCHEMA_BLOCK),
            "Its schema (needed to create the dataset).",
        ),
    ],
    unknown: Unknown::Structural,
};

static IMPORT_SERVICE_CONFIG: Object = Object {
    description: "Settings of every dataset import job. Other keys are ignored (with a warning), as \
                  in the reference.",
    fields: &[
        field(
            "importMode",
            Shape::Enum(&["FULL", "INCREMENTAL"]),
            "FULL (default) replaces the bulk data; INCREMENTAL adds to it (the first import is \
             always FULL).",
        ),
        field(
            "publishAttributionMetricsToS3",
            Shape::Bool,
            "Publish metric attribution metrics to S3 (default false).",
        ),
        TAGS,
    ],
    unknown: Unknown::Ignored,
};

static DATASETS: Object = Object {
    description: "The datasets of the group; when present, interactions is required.",
    fields: &[
        field(
            "serviceConfig",
            Shape::Object(&IMPORT_SERVICE_CONFIG),
            "Import job settings.",
        ),
        field(
            "interactions",
            Shape::Object(&DATASET),
            "The item interactions dataset.",
        ),
        field("users", Shape::Object(&DATASET), "The users dataset."),
        field("items", Shape::Object(&DATASET), "The items dataset."),
    ],
    unknown: Unknown::Structural,
};

// ---------------------------------------------------------------------------------------------------
// Dataset group and root
// ---------------------------------------------------------------------------------------------------

static DATASET_GROUP_SERVICE_CONFIG: Object = Object {
    description: "CreateDatasetGroup members.",
    fields: &[
        required(
            "name",
            NAME,
            "Dataset group name; it also names the data folder train/<name>/.",
        ),
        field(
            "roleArn",
            patterned(0, 256, Pattern::RoleArn),
            "Role Personalize assumes to use kmsKeyArn.",
        ),
        field(
            "kmsKeyArn",
            patterned(0, 2048, Pattern::KmsKeyArn),
            "KMS key that encrypts the group's data.",
        ),
        field(
            "domain",
            Shape::Enum(&["ECOMMERCE", "VIDEO_ON_DEMAND"]),
            "Makes this a Domain dataset group (needed for recommenders).",
        ),
        TAGS,
    ],
    unknown: Unknown::Parameter,
};

static DATASET_GROUP_SCHEDULES: Object = Object {
    description: "Dataset group schedules.",
    fields: &[field(
        "import",
        SCHEDULE,
        "When to import all datasets again: cron(min hour day-of-month month day-of-week year), \
         rate(N unit) or \"delete\".",
    )],
    unknown: Unknown::Structural,
};

static DATASET_GROUP_WORKFLOW: Object = Object {
    description: "What personalize-ops does with the group over time.",
    fields: &[
        field(
            "schedules",
            Shape::Object(&DATASET_GROUP_SCHEDULES),
            "Import schedule.",
        ),
        field(
            "maxAge",
            MAX_AGE,
            "An import younger than this counts as current and is not repeated (default \
             \"365 days\"), e.g. \"1 day 2 hours\".",
        ),
        field(
            "replaceFilters",
            Shape::Bool,
            "Replace a filter whose expression changed: delete it, wait, create it again with the \
             same name (default false: a changed expression is a conflict). Recommendations that \
             use the filter fail while it is replaced.",
        ),
    ],
    unknown: Unknown::Structural,
};

static DATASET_GROUP: Object = Object {
    description: "The dataset group this file describes.",
    fields: &[
        required(
            "serviceConfig",
            Shape::Object(&DATASET_GROUP_SERVICE_CONFIG),
            "CreateDatasetGroup members.",
        ),
        field(
            "workflowConfig",
            Shape::Object(&DATASET_GROUP_WORKFLOW),
            "Import schedule and maxAge.",
        ),
    ],
    unknown: Unknown::Structural,
};

/// The whole parameter file.
pub static PARAMETER_FILE: Object = Object {
    description: "A personalize-ops parameter file (train/<group>/config.json): one dataset group \
                  and everything in it.",
    fields: &[
        field(
            "tags",
            Shape::Tags,
            "Root tags: every resource without its own `tags` gets these.",
        ),
        Field {
            name: "datasetGroup",
            shape: Shape::Object(&DATASET_GROUP),
            presence: Presence::RequiredSaying("A datasetGroup must be provided at path datasetGroup"),
            description: "The dataset group.",
        },
        field("datasets", Shape::Object(&DATASETS), "The datasets."),
        field(
            "eventTracker",
            Shape::Object(&EVENT_TRACKER),
            "The event tracker.",
        ),
        field("filters", Shape::List(&FILTERS), "Filters."),
        field("solutions", Shape::List(&SOLUTIONS), "Solutions."),
        field(
            "recommenders",
            Shape::List(&RECOMMENDERS),
            "Recommenders (Domain dataset groups).",
        ),
    ],
    unknown: Unknown::Structural,
};

// ---------------------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------------------

/// Checks `value` against `shape`, adding every problem found to `out`.
pub(crate) fn check(value: &Value, shape: &Shape, path: &JsonPath, out: &mut Findings) {
    match shape {
        Shape::Object(object) => check_object(value, object, path, out),
        Shape::List(list) => check_list(value, list, path, out),
        Shape::Map(map) => check_map(value, map, path, out),
        Shape::Text(text) => check_text(value, text, path, out),
        Shape::Enum(values) => check_enum(value, values, path, out),
        Shape::Bool => {
            if !value.is_boolean() {
                out.error(path, type_message(path, value, "true or false"));
            }
        }
        Shape::Int(range) => check_int(value, range, path, out),
        Shape::Number(range) => check_number(value, range, path, out),
        Shape::Tags => check_tags(value, path, out),
        Shape::AvroDocument => check_avro(value, path, out),
    }
}

fn parameter_name(path: &JsonPath) -> String {
    path.last_key()
        .map(str::to_string)
        .unwrap_or_else(|| path.to_string())
}

fn type_message(path: &JsonPath, value: &Value, expected: &str) -> String {
    format!(
        "Invalid type for parameter {}, value: {}, expected {expected}, found {}",
        parameter_name(path),
        snippet(value),
        kind_of(value)
    )
}

fn check_object(value: &Value, object: &Object, path: &JsonPath, out: &mut Findings) {
    let Some(map) = value.as_object() else {
        out.error(path, type_message(path, value, "an object"));
        return;
    };
    for (key, member) in map {
        let member_path = path.key(key);
        let Some(field) = object.fields.iter().find(|f| f.name == key) else {
            unknown_key(object, key, path, &member_path, out);
            continue;
        };
        match field.presence {
            Presence::SetByService => {
                out.warning(
                    &member_path,
                    format!("{key} is set by personalize-ops; the value here is ignored"),
                );
            }
            Presence::Removed(message) => out.warning(&member_path, message),
            Presence::Optional | Presence::Required | Presence::RequiredSaying(_) => {
                check(member, &field.shape, &member_path, out);
            }
        }
    }
    for field in object.fields {
        if map.contains_key(field.name) {
            continue;
        }
        match field.presence {
            Presence::Required if object.unknown == Unknown::Structural => {
                out.error(path, format!("Missing required key \"{}\"", field.name));
            }
            Presence::Required => out.error(
                path,
                format!("Missing required parameter in input: \"{}\"", field.name),
            ),
            Presence::RequiredSaying(message) => out.error(&path.key(field.name), message),
            Presence::Optional | Presence::SetByService | Presence::Removed(_) => {}
        }
    }
}

fn known_keys(object: &Object) -> String {
    object
        .fields
        .iter()
        .filter(|f| !matches!(f.presence, Presence::SetByService | Presence::Removed(_)))
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_key(object: &Object, key: &str, parent: &JsonPath, path: &JsonPath, out: &mut Findings) {
    match object.unknown {
        Unknown::Structural => out.error(
            path,
            format!(
                "key {} is not an allowed key (allowed here: {})",
                path.dotted(),
                known_keys(object)
            ),
        ),
        Unknown::Parameter => out.error(
            path,
            format!(
                "Unknown parameter \"{key}\", must be one of: {}",
                known_keys(object)
            ),
        ),
        Unknown::Ignored => out.warning(
            path,
            format!(
                "key {key} is ignored: only {} are used in {}",
                known_keys(object),
                parent.dotted()
            ),
        ),
        Unknown::SolutionVersion => out.error(
            path,
            format!(
                "Allowed keys for solutionVersion are: ['name', 'trainingMode', 'tags']. \
                 Unsupported key(s): ['{key}']"
            ),
        ),
    }
}

fn check_list(value: &Value, list: &List, path: &JsonPath, out: &mut Findings) {
    let Some(items) = value.as_array() else {
        out.error(path, type_message(path, value, "a list"));
        return;
    };
    if let Some(max) = list.max_items
        && items.len() > max
    {
        out.error(
            path,
            format!(
                "Invalid length for parameter {}, value: {}, valid max length: {max}",
                parameter_name(path),
                items.len()
            ),
        );
    }
    for (i, item) in items.iter().enumerate() {
        check(item, &list.item, &path.index(i), out);
    }
}

fn check_map(value: &Value, map: &MapShape, path: &JsonPath, out: &mut Findings) {
    let Some(entries) = value.as_object() else {
        out.error(path, type_message(path, value, "an object"));
        return;
    };
    if let Some(max) = map.max_entries
        && entries.len() > max
    {
        out.error(
            path,
            format!(
                "Invalid length for parameter {}, value: {} entries, valid max length: {max}",
                parameter_name(path),
                entries.len()
            ),
        );
    }
    for (key, member) in entries {
        let member_path = path.key(key);
        check(&Value::String(key.clone()), &map.key, &member_path, out);
        check(member, &map.value, &member_path, out);
    }
}

fn check_text(value: &Value, text: &Text, path: &JsonPath, out: &mut Findings) {
    let Some(s) = value.as_str() else {
        let expected = match text.syntax {
            Syntax::Schedule => {
                "one string: cron(...), rate(...) or \"delete\" (a list of schedules is not accepted)"
            }
            Syntax::MaxAge => "a string such as \"1 day\"",
            Syntax::Plain | Syntax::FilterExpression => "a string",
        };
        out.error(path, type_message(path, value, expected));
        return;
    };
    let name = parameter_name(path);
    let len = s.chars().count();
    if len < text.min_len {
        out.error(
            path,
            format!(
                "Invalid length for parameter {name}, value: {len}, valid min length: {}",
                text.min_len
            ),
        );
    }
    if let Some(max) = text.max_len
        && len > max
    {
        out.error(
            path,
            format!("Invalid length for parameter {name}, value: {len}, valid max length: {max}"),
        );
    }
    if let Some(pattern) = text.pattern
        && !pattern.matches(s)
    {
        out.error(
            path,
            format!(
                "Invalid value for parameter {name}, value: {}, must be {}",
                snippet(value),
                pattern.rule()
            ),
        );
    }
    match text.syntax {
        Syntax::Plain => {}
        Syntax::Schedule => {
            if let Err(e) = Schedule::parse(s) {
                out.error(path, e.to_string());
            }
        }
        Syntax::MaxAge => {
            if let Err(e) = duration::parse_max_age(s) {
                out.warning(
                    path,
                    format!("{e}; ignored, as the reference ignores it (no age limit applies)"),
                );
            }
        }
        Syntax::FilterExpression => {
            if let Err(e) = filter::parse(s) {
                out.error(path, format!("invalid filter expression: {e}"));
            }
        }
    }
}

fn check_enum(value: &Value, values: &[&str], path: &JsonPath, out: &mut Findings) {
    let expected = format!("one of {}", values.join(", "));
    match value.as_str() {
        None => out.error(path, type_message(path, value, &expected)),
        Some(s) if values.contains(&s) => {}
        Some(_) => out.error(
            path,
            format!(
                "Invalid value for parameter {}, value: {}, valid values: {}",
                parameter_name(path),
                snippet(value),
                values.join(", ")
            ),
        ),
    }
}

fn range_message(path: &JsonPath, value: &Value, bound: &str, limit: String) -> String {
    format!(
        "Invalid value for parameter {}, value: {}, valid {bound} value: {limit}",
        parameter_name(path),
        snippet(value)
    )
}

fn check_int(value: &Value, range: &IntRange, path: &JsonPath, out: &mut Findings) {
    let min = range.min.unwrap_or(i64::from(i32::MIN));
    let max = range.max.unwrap_or(i64::from(i32::MAX));
    let n = match value {
        Value::Number(n) if n.is_i64() => n.as_i64(),
        Value::Number(n) if n.is_u64() => None, // above i64::MAX: over any limit
        _ => {
            out.error(path, type_message(path, value, "an integer"));
            return;
        }
    };
    match n {
        Some(n) if n < min => out.error(path, range_message(path, value, "min", min.to_string())),
        Some(n) if n <= max => {}
        _ => out.error(path, range_message(path, value, "max", max.to_string())),
    }
}

fn check_number(value: &Value, range: &NumberRange, path: &JsonPath, out: &mut Findings) {
    let Some(n) = value.as_f64() else {
        out.error(path, type_message(path, value, "a number"));
        return;
    };
    if let Some(min) = range.min
        && n < min
    {
        out.error(path, range_message(path, value, "min", min.to_string()));
    }
    if let Some(max) = range.max
        && n > max
    {
        out.error(path, range_message(path, value, "max", max.to_string()));
    }
}

fn check_tags(value: &Value, path: &JsonPath, out: &mut Findings) {
    let Some(tags) = value.as_array() else {
        let at = if path.dotted() == "tags" {
            "root".to_string()
        } else {
            path.dotted()
        };
        out.error(
            path,
            format!(
                "Invalid type at path {at} for tags, expected list[dict]. Found {}",
                kind_of(value)
            ),
        );
        return;
    };
    if tags.len() > MAX_TAGS {
        out.error(
            path,
            format!("{} tags; a resource can have at most {MAX_TAGS}", tags.len()),
        );
    }
    for (i, tag) in tags.iter().enumerate() {
        let tag_path = path.index(i);
        let Some(map) = tag.as_object() else {
            out.error(
                &tag_path,
                format!(
                    "a tag must be an object {{\"tagKey\": …, \"tagValue\": …}}, found {}",
                    kind_of(tag)
                ),
            );
            continue;
        };
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "tagKey" && *k != "tagValue")
            .collect();
        let missing: Vec<&str> = ["tagKey", "tagValue"]
            .into_iter()
            .filter(|k| !map.contains_key(*k))
            .collect();
        if !unknown.is_empty() || !missing.is_empty() {
            let mut detail = Vec::new();
            if !missing.is_empty() {
                detail.push(format!("missing {}", missing.join(", ")));
            }
            if !unknown.is_empty() {
                detail.push(format!("unknown {}", unknown.join(", ")));
            }
            out.error(
                &tag_path,
                format!(
                    "Parameter validation failed: Tag keys must be one of: 'tagKey', 'tagValue' ({})",
                    detail.join("; ")
                ),
            );
        }
        for (key, (min, max)) in [("tagKey", TAG_KEY_LEN), ("tagValue", TAG_VALUE_LEN)] {
            if let Some(member) = map.get(key) {
                let text = Text {
                    min_len: min,
                    max_len: Some(max),
                    pattern: Some(Pattern::TagText),
                    syntax: Syntax::Plain,
                };
                check_text(member, &text, &tag_path.key(key), out);
            }
        }
    }
}

fn check_avro(value: &Value, path: &JsonPath, out: &mut Findings) {
    if !value.is_object() {
        out.error(path, type_message(path, value, "an Avro record object"));
        return;
    }
    let len = value.to_string().chars().count();
    if len > avro::MAX_SCHEMA_LEN {
        out.error(
            path,
            format!(
                "The schema is not valid: it is {len} characters as JSON; Personalize accepts at \
                 most {}",
                avro::MAX_SCHEMA_LEN
            ),
        );
        return;
    }
    if let Err(issues) = avro::parse(value) {
        for issue in issues {
            let at = if issue.path.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{}", issue.path)
            };
            let message = format!("The schema is not valid: {}", issue.message);
            let target = if issue.severity == avro::Severity::Error {
                &mut out.errors
            } else {
                &mut out.warnings
            };
            target.push(crate::spec::issues::Issue { path: at, message });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn findings(value: Value, shape: &Shape) -> Findings {
        let mut out = Findings::default();
        check(&value, shape, &JsonPath::root().key("x"), &mut out);
        out
    }

    fn messages(issues: &[crate::spec::issues::Issue]) -> Vec<String> {
        issues.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn every_pattern_compiles() {
        for p in ALL_PATTERNS {
            assert!(Regex::new(p.regex_source()).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn names_follow_the_api_pattern_and_length() {
        assert!(Pattern::Name.matches("a-b_C9"));
        assert!(!Pattern::Name.matches("-a"));
        assert!(!Pattern::Name.matches("bad name!"));
        assert!(findings(json!("x".repeat(63)), &NAME).errors.is_empty());
        let long = findings(json!("x".repeat(64)), &NAME);
        assert_eq!(
            messages(&long.errors),
            ["x: Invalid length for parameter x, value: 64, valid max length: 63"]
        );
        assert_eq!(
            findings(json!(""), &NAME).errors.len(),
            2,
            "too short and no match"
        );
    }

    #[test]
    fn integers_reject_fractions_strings_and_out_of_range() {
        assert!(findings(json!(1), &TPS).errors.is_empty());
        let zero = findings(json!(0), &TPS);
        assert_eq!(
            zero.errors[0].message,
            "Invalid value for parameter x, value: 0, valid min value: 1"
        );
        assert!(
            findings(json!(1.5), &TPS).errors[0]
                .message
                .contains("expected an integer")
        );
        assert!(
            findings(json!("1"), &TPS).errors[0]
                .message
                .contains("found a string")
        );
        let huge = findings(json!(u64::MAX), &TPS);
        assert!(huge.errors[0].message.contains("valid max value: 2147483647"));
    }

    #[test]
    fn unknown_keys_are_reported_in_the_style_of_their_place() {
        let structural = findings(
            json!({"serviceConfig": {"name": "g"}, "foo": 1}),
            &Shape::Object(&DATASET_GROUP),
        );
        assert_eq!(structural.errors.len(), 1);
        assert!(
            structural.errors[0]
                .message
                .starts_with("key x.foo is not an allowed key")
        );
        let parameter = findings(
            json!({"name": "g", "bogus": 1}),
            &Shape::Object(&DATASET_GROUP_SERVICE_CONFIG),
        );
        assert_eq!(
            parameter.errors[0].message,
            "Unknown parameter \"bogus\", must be one of: name, roleArn, kmsKeyArn, domain, tags"
        );
        let ignored = findings(
            json!({"importMode": "FULL", "other": 1}),
            &Shape::Object(&IMPORT_SERVICE_CONFIG),
        );
        assert!(ignored.errors.is_empty());
        assert_eq!(ignored.warnings[0].path, "x.other");
    }

    #[test]
    fn service_set_and_removed_keys_are_warnings() {
        let out = findings(
            json!({"name": "s", "performAutoML": true, "datasetGroupArn": "x"}),
            &Shape::Object(&SOLUTION_SERVICE_CONFIG),
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(out.warnings.len(), 2);
        assert!(
            out.warnings[0]
                .message
                .starts_with("performAutoML is not a valid configuration parameter")
        );
    }

    #[test]
    fn tags_must_be_a_list_of_key_value_objects() {
        let mut out = Findings::default();
        check(&json!({}), &Shape::Tags, &JsonPath::root().key("tags"), &mut out);
        assert!(
            out.errors[0]
                .message
                .starts_with("Invalid type at path root for tags, expected list[dict].")
        );
        let bad = findings(json!([{"tagKeys": "a", "tagValue": "b"}]), &Shape::Tags);
        assert_eq!(bad.errors.len(), 1);
        assert!(bad.errors[0].message.contains("missing tagKey; unknown tagKeys"));
        let too_many: Vec<Value> = (0..51)
            .map(|i| json!({"tagKey": format!("k{i}"), "tagValue": ""}))
            .collect();
        assert!(
            findings(json!(too_many), &Shape::Tags).errors[0]
                .message
                .contains("at most 50")
        );
        let long_key = findings(
            json!([{"tagKey": "k".repeat(129), "tagValue": "v"}]),
            &Shape::Tags,
        );
        assert_eq!(long_key.errors[0].path, "x[0].tagKey");
        let bad_char = findings(json!([{"tagKey": "a;b", "tagValue": "v"}]), &Shape::Tags);
        assert!(
            bad_char.errors[0]
                .message
                .contains("must be letters, digits, spaces")
        );
        let unicode = findings(json!([{"tagKey": "Größe", "tagValue": "東京 1"}]), &Shape::Tags);
        assert!(unicode.errors.is_empty(), "{:?}", unicode.errors);
    }

    #[test]
    fn schedules_go_through_the_schedule_parser() {
        assert!(findings(json!("cron(0 3 * * ? *)"), &SCHEDULE).errors.is_empty());
        assert!(findings(json!("rate(1 day)"), &SCHEDULE).errors.is_empty());
        assert!(findings(json!("delete"), &SCHEDULE).errors.is_empty());
        assert_eq!(findings(json!("cron(0 12 * * ?)"), &SCHEDULE).errors.len(), 1);
        let list = findings(json!(["cron(0 3 * * ? *)"]), &SCHEDULE);
        assert!(
            list.errors[0]
                .message
                .contains("a list of schedules is not accepted")
        );
    }

    #[test]
    fn an_unreadable_max_age_is_a_warning() {
        let out = findings(json!("banana"), &MAX_AGE);
        assert!(out.errors.is_empty());
        assert_eq!(out.warnings.len(), 1);
        assert!(
            findings(json!(86400), &MAX_AGE).errors[0]
                .message
                .contains("expected a string")
        );
    }

    #[test]
    fn maps_check_keys_and_values() {
        let out = findings(
            json!({"POPULARITY": 0.5, "NOVELTY": 2}),
            &Shape::Map(&RANKING_INFLUENCE),
        );
        assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
        assert!(out.errors.iter().all(|e| e.path == "x.NOVELTY"));
    }

    #[test]
    fn avro_documents_are_parsed() {
        let ok =
            json!({"type": "record", "name": "Users", "fields": [{"name": "USER_ID", "type": "string"}]});
        assert!(findings(ok, &Shape::AvroDocument).errors.is_empty());
        let nested = json!({"type": "record", "name": "Users", "fields": [{"name": "A", "type": {"type": "array", "items": "string"}}]});
        let out = findings(nested, &Shape::AvroDocument);
        assert!(!out.errors.is_empty());
        assert!(out.errors[0].path.starts_with("x.fields[0]"), "{:?}", out.errors);
        assert!(out.errors[0].message.starts_with("The schema is not valid: "));
        assert!(
            findings(json!("{}"), &Shape::AvroDocument).errors[0]
                .message
                .contains("Avro record object")
        );
    }
}
