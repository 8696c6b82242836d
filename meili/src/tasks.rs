//! Task vocabulary: the task types and statuses Meilisearch names in task views and accepts in
//! `types` and `statuses` filters. One enum each, so the gateway, the kernel's task log and the dev
//! node cannot list different ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! names {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        $vis enum $name {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// Every value, in Meilisearch's declaration order (the order its errors list them in).
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        /// As Meilisearch reads a filter's values: ignoring ASCII case.
        impl FromStr for $name {
            type Err = ();

            fn from_str(s: &str) -> Result<Self, ()> {
                $name::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s)).ok_or(())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

names! {
    /// Meilisearch 1.50's task `Kind`.
    pub enum TaskKind {
        DocumentAdditionOrUpdate = "documentAdditionOrUpdate",
        DocumentEdition = "documentEdition",
        DocumentDeletion = "documentDeletion",
        SettingsUpdate = "settingsUpdate",
        IndexCreation = "indexCreation",
        IndexDeletion = "indexDeletion",
        IndexUpdate = "indexUpdate",
        IndexSwap = "indexSwap",
        TaskCancelation = "taskCancelation",
        TaskDeletion = "taskDeletion",
        DumpCreation = "dumpCreation",
        SnapshotCreation = "snapshotCreation",
        Export = "export",
        UpgradeDatabase = "upgradeDatabase",
        IndexCompaction = "indexCompaction",
        NetworkTopologyChange = "networkTopologyChange",
        DsrUpdate = "dsrUpdate",
        DsrClear = "dsrClear",
    }
}

names! {
    /// A task's status.
    pub enum TaskStatus {
        Enqueued = "enqueued",
        Processing = "processing",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
    }
}

impl TaskStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// A task type or status given to a `types` or `statuses` filter, read as Meilisearch reads it; the
/// error is Meilisearch's message (`` `x` is not a valid task type. Available types are `a`, …``).
pub fn filter_value<T: FromStr + fmt::Display>(all: &[T], what: &str, plural: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("`{v}` is not a valid task {what}. Available {plural} are {}.", crate::listed(all)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in TaskKind::ALL {
            assert_eq!(k.as_str().parse::<TaskKind>(), Ok(*k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in TaskStatus::ALL {
            assert_eq!(serde_json::from_value::<TaskStatus>(s.as_str().into()).unwrap(), *s);
        }
        assert_eq!("dsrUpdate".parse::<TaskKind>(), Ok(TaskKind::DsrUpdate));
        assert_eq!("DSRUPDATE".parse::<TaskKind>(), Ok(TaskKind::DsrUpdate));
        assert!("dsr".parse::<TaskKind>().is_err());
        assert!(serde_json::from_value::<TaskStatus>("Failed".into()).is_err(), "stored names are exact");
    }
}
