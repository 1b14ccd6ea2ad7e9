//! Subscription tiers and their daily limits per endpoint class. The limits are data
//! (`shared/core/data/tiers.json`, replaceable with `ORRERY_TIERS_FILE`), not code.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Free,
    Basic,
    Premium,
    Unlimited,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Basic, Tier::Premium, Tier::Unlimited];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Basic => "basic",
            Tier::Premium => "premium",
            Tier::Unlimited => "unlimited",
        }
    }
}

/// What a request is counted as. Each class has its own daily counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaClass {
    Charts,
    Readings,
    BatchItems,
    WebhookTests,
    Analytics,
    /// Managing keys, webhooks and saved resources.
    Management,
}

impl QuotaClass {
    pub const ALL: [QuotaClass; 6] = [
        QuotaClass::Charts,
        QuotaClass::Readings,
        QuotaClass::BatchItems,
        QuotaClass::WebhookTests,
        QuotaClass::Analytics,
        QuotaClass::Management,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuotaClass::Charts => "charts",
            QuotaClass::Readings => "readings",
            QuotaClass::BatchItems => "batch_items",
            QuotaClass::WebhookTests => "webhook_tests",
            QuotaClass::Analytics => "analytics",
            QuotaClass::Management => "management",
        }
    }

    /// The class named `text` (as in a counter's sort key).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == text)
    }

    /// The policy name in `RateLimit-Policy` / `RateLimit` headers.
    pub fn policy_name(self) -> String {
        format!("{}-daily", self.as_str().replace('_', "-"))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("tier limits: {0}")]
pub struct TierLimitsError(String);

/// Daily limits: tier → class → requests per UTC day; and how many real-time connections
/// (WebSockets) an account of the tier may hold open at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLimits {
    limits: HashMap<Tier, HashMap<QuotaClass, u32>>,
    connections: HashMap<Tier, u32>,
}

/// One tier in the file: its daily limits by class, beside `realtime_connections`.
#[derive(Deserialize)]
struct TierPlan {
    realtime_connections: u32,
    #[serde(flatten)]
    daily: HashMap<QuotaClass, u32>,
}

impl TierLimits {
    /// The product plan shipped with Orrery.
    pub fn default_plan() -> Self {
        #[allow(clippy::expect_used)]
        Self::parse(include_str!("../../data/tiers.json")).expect("the shipped tiers.json is valid")
    }

    /// Parses limits; every tier must define every class and its connection limit.
    pub fn parse(json: &str) -> Result<Self, TierLimitsError> {
        let plans: HashMap<Tier, TierPlan> =
            serde_json::from_str(json).map_err(|err| TierLimitsError(err.to_string()))?;
        let mut limits = HashMap::new();
        let mut connections = HashMap::new();
        for tier in Tier::ALL {
            let plan = plans
                .get(&tier)
                .ok_or_else(|| TierLimitsError(format!("tier {} is missing", tier.as_str())))?;
            if let Some(class) = QuotaClass::ALL
                .iter()
                .find(|class| !plan.daily.contains_key(class))
            {
                return Err(TierLimitsError(format!(
                    "tier {} has no limit for {}",
                    tier.as_str(),
                    class.as_str()
                )));
            }
            limits.insert(tier, plan.daily.clone());
            connections.insert(tier, plan.realtime_connections);
        }
        Ok(Self {
            limits,
            connections,
        })
    }

    /// How many real-time connections an account of `tier` may hold open at once.
    pub fn connection_limit(&self, tier: Tier) -> u32 {
        self.connections.get(&tier).copied().unwrap_or(0)
    }

    pub fn limit(&self, tier: Tier, class: QuotaClass) -> u32 {
        self.limits
            .get(&tier)
            .and_then(|classes| classes.get(&class))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_matches_the_product_sheet() {
        let plan = TierLimits::default_plan();
        let expected = [
            (Tier::Free, 50, 10),
            (Tier::Basic, 200, 50),
            (Tier::Premium, 1000, 500),
            (Tier::Unlimited, 10_000, 10_000),
        ];
        for (tier, charts, readings) in expected {
            assert_eq!(plan.limit(tier, QuotaClass::Charts), charts);
            assert_eq!(plan.limit(tier, QuotaClass::Readings), readings);
        }
        for class in QuotaClass::ALL {
            assert_eq!(plan.limit(Tier::Unlimited, class), 10_000);
        }
        let connections = Tier::ALL.map(|tier| plan.connection_limit(tier));
        assert_eq!(connections, [5, 25, 100, 2000]);
    }

    #[test]
    fn incomplete_limits_are_refused() {
        let err = TierLimits::parse(r#"{"free": {"charts": 1}}"#).expect_err("incomplete");
        assert!(err.to_string().contains("realtime_connections"), "{err}");
        let mut plan: serde_json::Value =
            serde_json::from_str(include_str!("../../data/tiers.json")).unwrap_or_default();
        plan["basic"]
            .as_object_mut()
            .map(|tier| tier.remove("readings"));
        let err = TierLimits::parse(&plan.to_string()).expect_err("incomplete");
        assert!(
            err.to_string().contains("basic has no limit for readings"),
            "{err}"
        );
        assert_eq!(QuotaClass::BatchItems.policy_name(), "batch-items-daily");
    }
}
