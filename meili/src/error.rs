//! Meilisearch's error vocabulary: every error code Meilisearch 1.50 answers with, its HTTP status
//! and its `type`, plus Miroir's own `miroir_*` codes, and the one error value `{code, message}`
//! that the kernel, the gateway and the dev node all build. Each of them turns it into
//! Meilisearch's body `{message, code, type, link}` in one place.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{json, Value};

/// Meilisearch's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequest,
    Internal,
    Auth,
    System,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Internal => "internal",
            ErrorType::Auth => "auth",
            ErrorType::System => "system",
        }
    }
}

/// An error code: its name, the HTTP status Meilisearch answers it with, and its type.
///
/// Codes are constants (`Code::INDEX_NOT_FOUND`), so a misspelt code does not compile; a code known
/// only at run time (deserr builds `invalid_task_limit` from a parameter's name) is looked up with
/// [`Code::named`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    pub name: &'static str,
    pub status: u16,
    pub kind: ErrorType,
}

macro_rules! codes {
    ($($ident:ident = $name:literal, $status:literal, $kind:ident;)*) => {
        impl Code {
            $(pub const $ident: Code = Code { name: $name, status: $status, kind: ErrorType::$kind };)*

            /// Every code, Meilisearch's then Miroir's.
            pub const ALL: &'static [Code] = &[$(Code::$ident),*];
        }
    };
}

// Meilisearch 1.50's codes, in the order of `make_error_codes!` in `meilisearch-types`.
codes! {
    API_KEY_ALREADY_EXISTS = "api_key_already_exists", 409, InvalidRequest;
    API_KEY_NOT_FOUND = "api_key_not_found", 404, InvalidRequest;
    INDEX_SCOPED_API_KEY_WITH_GLOBAL_ACTION = "index_scoped_api_key_with_global_action", 400, InvalidRequest;
    BAD_PARAMETER = "bad_parameter", 400, InvalidRequest;
    BAD_REQUEST = "bad_request", 400, InvalidRequest;
    DATABASE_SIZE_LIMIT_REACHED = "database_size_limit_reached", 500, Internal;
    DOCUMENT_NOT_FOUND = "document_not_found", 404, InvalidRequest;
    DUMP_ALREADY_PROCESSING = "dump_already_processing", 409, InvalidRequest;
    DUMP_NOT_FOUND = "dump_not_found", 404, InvalidRequest;
    DUMP_PROCESS_FAILED = "dump_process_failed", 500, Internal;
    DUPLICATE_INDEX_FOUND = "duplicate_index_found", 400, InvalidRequest;
    IMMUTABLE_API_KEY_ACTIONS = "immutable_api_key_actions", 400, InvalidRequest;
    IMMUTABLE_API_KEY_CREATED_AT = "immutable_api_key_created_at", 400, InvalidRequest;
    IMMUTABLE_API_KEY_EXPIRES_AT = "immutable_api_key_expires_at", 400, InvalidRequest;
    IMMUTABLE_API_KEY_INDEXES = "immutable_api_key_indexes", 400, InvalidRequest;
    IMMUTABLE_API_KEY_KEY = "immutable_api_key_key", 400, InvalidRequest;
    IMMUTABLE_API_KEY_UID = "immutable_api_key_uid", 400, InvalidRequest;
    IMMUTABLE_API_KEY_UPDATED_AT = "immutable_api_key_updated_at", 400, InvalidRequest;
    IMMUTABLE_INDEX_CREATED_AT = "immutable_index_created_at", 400, InvalidRequest;
    IMMUTABLE_INDEX_UPDATED_AT = "immutable_index_updated_at", 400, InvalidRequest;
    IMPORT_TASK_ALREADY_RECEIVED = "import_task_already_received", 412, InvalidRequest;
    IMPORT_TASK_UNKNOWN_REMOTE = "import_task_unknown_remote", 412, InvalidRequest;
    RECEIVE_IMPORT_FINISHED_UNKNOWN_REMOTE = "receive_import_finished_unknown_remote", 412, InvalidRequest;
    IMPORT_TASK_WITHOUT_NETWORK_TASK = "import_task_without_network_task", 503, InvalidRequest;
    INDEX_ALREADY_EXISTS = "index_already_exists", 409, InvalidRequest;
    INDEX_CREATION_FAILED = "index_creation_failed", 500, Internal;
    INDEX_NOT_FOUND = "index_not_found", 404, InvalidRequest;
    INDEX_PRIMARY_KEY_ALREADY_EXISTS = "index_primary_key_already_exists", 400, InvalidRequest;
    INDEX_PRIMARY_KEY_MULTIPLE_CANDIDATES_FOUND = "index_primary_key_multiple_candidates_found", 400, InvalidRequest;
    INDEX_PRIMARY_KEY_NO_CANDIDATE_FOUND = "index_primary_key_no_candidate_found", 400, InvalidRequest;
    INTERNAL = "internal", 500, Internal;
    INVALID_API_KEY = "invalid_api_key", 403, Auth;
    INVALID_API_KEY_ACTIONS = "invalid_api_key_actions", 400, InvalidRequest;
    INVALID_API_KEY_DESCRIPTION = "invalid_api_key_description", 400, InvalidRequest;
    INVALID_API_KEY_EXPIRES_AT = "invalid_api_key_expires_at", 400, InvalidRequest;
    INVALID_API_KEY_INDEXES = "invalid_api_key_indexes", 400, InvalidRequest;
    INVALID_API_KEY_LIMIT = "invalid_api_key_limit", 400, InvalidRequest;
    INVALID_API_KEY_NAME = "invalid_api_key_name", 400, InvalidRequest;
    INVALID_API_KEY_OFFSET = "invalid_api_key_offset", 400, InvalidRequest;
    INVALID_API_KEY_UID = "invalid_api_key_uid", 400, InvalidRequest;
    INVALID_CONTENT_TYPE = "invalid_content_type", 415, InvalidRequest;
    INVALID_DOCUMENT_CSV_DELIMITER = "invalid_document_csv_delimiter", 400, InvalidRequest;
    INVALID_DOCUMENT_FIELDS = "invalid_document_fields", 400, InvalidRequest;
    INVALID_DOCUMENT_RETRIEVE_VECTORS = "invalid_document_retrieve_vectors", 400, InvalidRequest;
    MISSING_DOCUMENT_FILTER = "missing_document_filter", 400, InvalidRequest;
    MISSING_DOCUMENT_EDITION_FUNCTION = "missing_document_edition_function", 400, InvalidRequest;
    INCONSISTENT_DOCUMENT_CHANGE_HEADERS = "inconsistent_document_change_headers", 400, InvalidRequest;
    INVALID_DOCUMENT_FILTER = "invalid_document_filter", 400, InvalidRequest;
    INVALID_DOCUMENT_SORT = "invalid_document_sort", 400, InvalidRequest;
    INVALID_DOCUMENT_USE_NETWORK = "invalid_document_use_network", 400, InvalidRequest;
    INVALID_DOCUMENT_GEO_FIELD = "invalid_document_geo_field", 400, InvalidRequest;
    INVALID_DOCUMENT_GEOJSON_FIELD = "invalid_document_geojson_field", 400, InvalidRequest;
    INVALID_HEADER_VALUE = "invalid_header_value", 400, InvalidRequest;
    INVALID_VECTOR_DIMENSIONS = "invalid_vector_dimensions", 400, InvalidRequest;
    INVALID_VECTORS_TYPE = "invalid_vectors_type", 400, InvalidRequest;
    INVALID_DOCUMENT_ID = "invalid_document_id", 400, InvalidRequest;
    INVALID_DOCUMENT_IDS = "invalid_document_ids", 400, InvalidRequest;
    INVALID_DOCUMENT_LIMIT = "invalid_document_limit", 400, InvalidRequest;
    INVALID_DOCUMENT_OFFSET = "invalid_document_offset", 400, InvalidRequest;
    INVALID_SEARCH_EMBEDDER = "invalid_search_embedder", 400, InvalidRequest;
    INVALID_SIMILAR_EMBEDDER = "invalid_similar_embedder", 400, InvalidRequest;
    INVALID_SEARCH_HYBRID_QUERY = "invalid_search_hybrid_query", 400, InvalidRequest;
    INVALID_INDEX_LIMIT = "invalid_index_limit", 400, InvalidRequest;
    INVALID_INDEX_OFFSET = "invalid_index_offset", 400, InvalidRequest;
    INVALID_INDEX_PRIMARY_KEY = "invalid_index_primary_key", 400, InvalidRequest;
    INVALID_INDEX_CUSTOM_METADATA = "invalid_index_custom_metadata", 400, InvalidRequest;
    INVALID_SKIP_CREATION = "invalid_skip_creation", 400, InvalidRequest;
    INVALID_INDEX_UID = "invalid_index_uid", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_FACETS = "invalid_multi_search_facets", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_FACETS_BY_INDEX = "invalid_multi_search_facets_by_index", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_FACET_ORDER = "invalid_multi_search_facet_order", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_QUERY_PERSONALIZATION = "invalid_multi_search_query_personalization", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_QUERY_SHOW_PERFORMANCE_DETAILS = "invalid_multi_search_query_show_performance_details", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_FEDERATED = "invalid_multi_search_federated", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_FEDERATION_OPTIONS = "invalid_multi_search_federation_options", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_MAX_VALUES_PER_FACET = "invalid_multi_search_max_values_per_facet", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_MERGE_FACETS = "invalid_multi_search_merge_facets", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_QUERY_FACETS = "invalid_multi_search_query_facets", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_DISTINCT = "invalid_multi_search_distinct", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_QUERY_PAGINATION = "invalid_multi_search_query_pagination", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_QUERY_RANKING_RULES = "invalid_multi_search_query_ranking_rules", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_QUERY_POSITION = "invalid_multi_search_query_position", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_REMOTE = "invalid_multi_search_remote", 400, InvalidRequest;
    INVALID_MULTI_SEARCH_WEIGHT = "invalid_multi_search_weight", 400, InvalidRequest;
    INVALID_NETWORK_LEADER = "invalid_network_leader", 400, InvalidRequest;
    INVALID_NETWORK_REMOTES = "invalid_network_remotes", 400, InvalidRequest;
    INVALID_NETWORK_SHARDS = "invalid_network_shards", 400, InvalidRequest;
    INVALID_NETWORK_SELF = "invalid_network_self", 400, InvalidRequest;
    INVALID_NETWORK_SEARCH_API_KEY = "invalid_network_search_api_key", 400, InvalidRequest;
    INVALID_NETWORK_WRITE_API_KEY = "invalid_network_write_api_key", 400, InvalidRequest;
    INVALID_NETWORK_URL = "invalid_network_url", 400, InvalidRequest;
    INVALID_SEARCH_ATTRIBUTES_TO_SEARCH_ON = "invalid_search_attributes_to_search_on", 400, InvalidRequest;
    INVALID_SEARCH_ATTRIBUTES_TO_CROP = "invalid_search_attributes_to_crop", 400, InvalidRequest;
    INVALID_SEARCH_ATTRIBUTES_TO_HIGHLIGHT = "invalid_search_attributes_to_highlight", 400, InvalidRequest;
    INVALID_SIMILAR_ATTRIBUTES_TO_RETRIEVE = "invalid_similar_attributes_to_retrieve", 400, InvalidRequest;
    INVALID_SIMILAR_RETRIEVE_VECTORS = "invalid_similar_retrieve_vectors", 400, InvalidRequest;
    INVALID_SEARCH_ATTRIBUTES_TO_RETRIEVE = "invalid_search_attributes_to_retrieve", 400, InvalidRequest;
    INVALID_SEARCH_RANKING_SCORE_THRESHOLD = "invalid_search_ranking_score_threshold", 400, InvalidRequest;
    INVALID_SIMILAR_RANKING_SCORE_THRESHOLD = "invalid_similar_ranking_score_threshold", 400, InvalidRequest;
    INVALID_SEARCH_RETRIEVE_VECTORS = "invalid_search_retrieve_vectors", 400, InvalidRequest;
    INVALID_SEARCH_CROP_LENGTH = "invalid_search_crop_length", 400, InvalidRequest;
    INVALID_SEARCH_CROP_MARKER = "invalid_search_crop_marker", 400, InvalidRequest;
    INVALID_SEARCH_FACETS = "invalid_search_facets", 400, InvalidRequest;
    INVALID_SEARCH_SEMANTIC_RATIO = "invalid_search_semantic_ratio", 400, InvalidRequest;
    INVALID_SEARCH_LOCALES = "invalid_search_locales", 400, InvalidRequest;
    INVALID_FACET_SEARCH_EXHAUSTIVE_FACET_COUNT = "invalid_facet_search_exhaustive_facet_count", 400, InvalidRequest;
    INVALID_FACET_SEARCH_FACET_NAME = "invalid_facet_search_facet_name", 400, InvalidRequest;
    INVALID_SIMILAR_ID = "invalid_similar_id", 400, InvalidRequest;
    INVALID_SEARCH_FILTER = "invalid_search_filter", 400, InvalidRequest;
    INVALID_SIMILAR_FILTER = "invalid_similar_filter", 400, InvalidRequest;
    INVALID_SEARCH_HIGHLIGHT_POST_TAG = "invalid_search_highlight_post_tag", 400, InvalidRequest;
    INVALID_SEARCH_HIGHLIGHT_PRE_TAG = "invalid_search_highlight_pre_tag", 400, InvalidRequest;
    INVALID_SEARCH_HITS_PER_PAGE = "invalid_search_hits_per_page", 400, InvalidRequest;
    INVALID_SIMILAR_LIMIT = "invalid_similar_limit", 400, InvalidRequest;
    INVALID_SEARCH_LIMIT = "invalid_search_limit", 400, InvalidRequest;
    INVALID_SEARCH_MATCHING_STRATEGY = "invalid_search_matching_strategy", 400, InvalidRequest;
    INVALID_SIMILAR_OFFSET = "invalid_similar_offset", 400, InvalidRequest;
    INVALID_SEARCH_OFFSET = "invalid_search_offset", 400, InvalidRequest;
    INVALID_SEARCH_PAGE = "invalid_search_page", 400, InvalidRequest;
    INVALID_SEARCH_Q = "invalid_search_q", 400, InvalidRequest;
    INVALID_FACET_SEARCH_QUERY = "invalid_facet_search_query", 400, InvalidRequest;
    INVALID_FACET_SEARCH_NAME = "invalid_facet_search_name", 400, InvalidRequest;
    FACET_SEARCH_DISABLED = "facet_search_disabled", 400, InvalidRequest;
    INVALID_SEARCH_VECTOR = "invalid_search_vector", 400, InvalidRequest;
    INVALID_SEARCH_MEDIA = "invalid_search_media", 400, InvalidRequest;
    INVALID_SEARCH_SHOW_MATCHES_POSITION = "invalid_search_show_matches_position", 400, InvalidRequest;
    INVALID_SEARCH_SHOW_RANKING_SCORE = "invalid_search_show_ranking_score", 400, InvalidRequest;
    INVALID_SIMILAR_SHOW_RANKING_SCORE = "invalid_similar_show_ranking_score", 400, InvalidRequest;
    INVALID_SEARCH_SHOW_RANKING_SCORE_DETAILS = "invalid_search_show_ranking_score_details", 400, InvalidRequest;
    INVALID_SEARCH_SHOW_PERFORMANCE_DETAILS = "invalid_search_show_performance_details", 400, InvalidRequest;
    INVALID_SEARCH_USE_NETWORK = "invalid_search_use_network", 400, InvalidRequest;
    INVALID_SIMILAR_SHOW_RANKING_SCORE_DETAILS = "invalid_similar_show_ranking_score_details", 400, InvalidRequest;
    INVALID_SIMILAR_SHOW_PERFORMANCE_DETAILS = "invalid_similar_show_performance_details", 400, InvalidRequest;
    INVALID_SEARCH_SORT = "invalid_search_sort", 400, InvalidRequest;
    INVALID_SEARCH_DISTINCT = "invalid_search_distinct", 400, InvalidRequest;
    INVALID_SEARCH_PERSONALIZE = "invalid_search_personalize", 400, InvalidRequest;
    INVALID_SEARCH_PERSONALIZE_USER_CONTEXT = "invalid_search_personalize_user_context", 400, InvalidRequest;
    INVALID_SEARCH_MEDIA_AND_VECTOR = "invalid_search_media_and_vector", 400, InvalidRequest;
    INVALID_SETTINGS_DISPLAYED_ATTRIBUTES = "invalid_settings_displayed_attributes", 400, InvalidRequest;
    INVALID_SETTINGS_DISTINCT_ATTRIBUTE = "invalid_settings_distinct_attribute", 400, InvalidRequest;
    INVALID_SETTINGS_PROXIMITY_PRECISION = "invalid_settings_proximity_precision", 400, InvalidRequest;
    INVALID_SETTINGS_FACET_SEARCH = "invalid_settings_facet_search", 400, InvalidRequest;
    INVALID_SETTINGS_PREFIX_SEARCH = "invalid_settings_prefix_search", 400, InvalidRequest;
    INVALID_SETTINGS_FACETING = "invalid_settings_faceting", 400, InvalidRequest;
    INVALID_SETTINGS_FILTERABLE_ATTRIBUTES = "invalid_settings_filterable_attributes", 400, InvalidRequest;
    INVALID_SETTINGS_FOREIGN_KEYS = "invalid_settings_foreign_keys", 400, InvalidRequest;
    INVALID_SETTINGS_PAGINATION = "invalid_settings_pagination", 400, InvalidRequest;
    INVALID_SETTINGS_SEARCH_CUTOFF_MS = "invalid_settings_search_cutoff_ms", 400, InvalidRequest;
    INVALID_SETTINGS_EMBEDDERS = "invalid_settings_embedders", 400, InvalidRequest;
    INVALID_SETTINGS_RANKING_RULES = "invalid_settings_ranking_rules", 400, InvalidRequest;
    INVALID_SETTINGS_SEARCHABLE_ATTRIBUTES = "invalid_settings_searchable_attributes", 400, InvalidRequest;
    INVALID_SETTINGS_SORTABLE_ATTRIBUTES = "invalid_settings_sortable_attributes", 400, InvalidRequest;
    INVALID_SETTINGS_STOP_WORDS = "invalid_settings_stop_words", 400, InvalidRequest;
    INVALID_SETTINGS_NON_SEPARATOR_TOKENS = "invalid_settings_non_separator_tokens", 400, InvalidRequest;
    INVALID_SETTINGS_SEPARATOR_TOKENS = "invalid_settings_separator_tokens", 400, InvalidRequest;
    INVALID_SETTINGS_DICTIONARY = "invalid_settings_dictionary", 400, InvalidRequest;
    INVALID_SETTINGS_SYNONYMS = "invalid_settings_synonyms", 400, InvalidRequest;
    INVALID_SETTINGS_TYPO_TOLERANCE = "invalid_settings_typo_tolerance", 400, InvalidRequest;
    INVALID_SETTINGS_LOCALIZED_ATTRIBUTES = "invalid_settings_localized_attributes", 400, InvalidRequest;
    INVALID_STATE = "invalid_state", 500, Internal;
    INVALID_STATS_SHOW_INTERNAL_DATABASE_SIZES = "invalid_stats_show_internal_database_sizes", 400, InvalidRequest;
    INVALID_STATS_SIZE_FORMAT = "invalid_stats_size_format", 400, InvalidRequest;
    INVALID_STORE_FILE = "invalid_store_file", 500, Internal;
    INVALID_SWAP_DUPLICATE_INDEX_FOUND = "invalid_swap_duplicate_index_found", 400, InvalidRequest;
    INVALID_SWAP_INDEXES = "invalid_swap_indexes", 400, InvalidRequest;
    INVALID_SWAP_RENAME = "invalid_swap_rename", 400, InvalidRequest;
    INVALID_TASK_AFTER_ENQUEUED_AT = "invalid_task_after_enqueued_at", 400, InvalidRequest;
    INVALID_TASK_AFTER_FINISHED_AT = "invalid_task_after_finished_at", 400, InvalidRequest;
    INVALID_TASK_AFTER_STARTED_AT = "invalid_task_after_started_at", 400, InvalidRequest;
    INVALID_TASK_BEFORE_ENQUEUED_AT = "invalid_task_before_enqueued_at", 400, InvalidRequest;
    INVALID_TASK_BEFORE_FINISHED_AT = "invalid_task_before_finished_at", 400, InvalidRequest;
    INVALID_TASK_BEFORE_STARTED_AT = "invalid_task_before_started_at", 400, InvalidRequest;
    INVALID_TASK_CANCELED_BY = "invalid_task_canceled_by", 400, InvalidRequest;
    INVALID_TASK_FROM = "invalid_task_from", 400, InvalidRequest;
    INVALID_TASK_LIMIT = "invalid_task_limit", 400, InvalidRequest;
    INVALID_TASK_REVERSE = "invalid_task_reverse", 400, InvalidRequest;
    INVALID_TASK_STATUSES = "invalid_task_statuses", 400, InvalidRequest;
    INVALID_TASK_TYPES = "invalid_task_types", 400, InvalidRequest;
    INVALID_TASK_UIDS = "invalid_task_uids", 400, InvalidRequest;
    INVALID_BATCH_UIDS = "invalid_batch_uids", 400, InvalidRequest;
    IO_ERROR = "io_error", 422, System;
    FEATURE_NOT_ENABLED = "feature_not_enabled", 400, InvalidRequest;
    MALFORMED_PAYLOAD = "malformed_payload", 400, InvalidRequest;
    MAX_FIELDS_LIMIT_EXCEEDED = "max_fields_limit_exceeded", 400, InvalidRequest;
    MISSING_API_KEY_ACTIONS = "missing_api_key_actions", 400, InvalidRequest;
    MISSING_API_KEY_EXPIRES_AT = "missing_api_key_expires_at", 400, InvalidRequest;
    MISSING_API_KEY_INDEXES = "missing_api_key_indexes", 400, InvalidRequest;
    MISSING_AUTHORIZATION_HEADER = "missing_authorization_header", 401, Auth;
    MISSING_CONTENT_TYPE = "missing_content_type", 415, InvalidRequest;
    MISSING_DOCUMENT_ID = "missing_document_id", 400, InvalidRequest;
    MISSING_FACET_SEARCH_FACET_NAME = "missing_facet_search_facet_name", 400, InvalidRequest;
    MISSING_INDEX_UID = "missing_index_uid", 400, InvalidRequest;
    MISSING_MASTER_KEY = "missing_master_key", 401, Auth;
    MISSING_NETWORK_URL = "missing_network_url", 400, InvalidRequest;
    MISSING_PAYLOAD = "missing_payload", 400, InvalidRequest;
    MISSING_SEARCH_HYBRID = "missing_search_hybrid", 400, InvalidRequest;
    MISSING_SWAP_INDEXES = "missing_swap_indexes", 400, InvalidRequest;
    MISSING_TASK_FILTERS = "missing_task_filters", 400, InvalidRequest;
    NETWORK_VERSION_MISMATCH = "network_version_mismatch", 412, InvalidRequest;
    NO_SPACE_LEFT_ON_DEVICE = "no_space_left_on_device", 422, System;
    NOT_LEADER = "not_leader", 400, InvalidRequest;
    PAYLOAD_TOO_LARGE = "payload_too_large", 413, InvalidRequest;
    REMOTE_BAD_RESPONSE = "remote_bad_response", 502, System;
    REMOTE_BAD_REQUEST = "remote_bad_request", 400, InvalidRequest;
    UNKNOWN_REMOTE = "unknown_remote", 400, InvalidRequest;
    REMOTE_COULD_NOT_SEND_REQUEST = "remote_could_not_send_request", 502, System;
    REMOTE_INVALID_API_KEY = "remote_invalid_api_key", 403, Auth;
    REMOTE_REMOTE_ERROR = "remote_remote_error", 502, System;
    REMOTE_TIMEOUT = "remote_timeout", 502, System;
    TOO_MANY_SEARCH_REQUESTS = "too_many_search_requests", 503, System;
    TASK_NOT_FOUND = "task_not_found", 404, InvalidRequest;
    TASK_FILE_NOT_FOUND = "task_file_not_found", 404, InvalidRequest;
    BATCH_NOT_FOUND = "batch_not_found", 404, InvalidRequest;
    TOO_MANY_OPEN_FILES = "too_many_open_files", 422, System;
    TOO_MANY_VECTORS = "too_many_vectors", 400, InvalidRequest;
    UNEXPECTED_NETWORK_PREVIOUS_REMOTES = "unexpected_network_previous_remotes", 400, InvalidRequest;
    NETWORK_VERSION_TOO_OLD = "network_version_too_old", 400, InvalidRequest;
    UNPROCESSED_NETWORK_TASK = "unprocessed_network_task", 400, InvalidRequest;
    UNRETRIEVABLE_DOCUMENT = "unretrievable_document", 400, Internal;
    UNRETRIEVABLE_ERROR_CODE = "unretrievable_error_code", 400, InvalidRequest;
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415, InvalidRequest;
    VECTOR_EMBEDDING_ERROR = "vector_embedding_error", 400, InvalidRequest;
    NOT_FOUND_SIMILAR_ID = "not_found_similar_id", 400, InvalidRequest;
    INVALID_DOCUMENT_EDITION_CONTEXT = "invalid_document_edition_context", 400, InvalidRequest;
    INVALID_DOCUMENT_EDITION_FUNCTION_FILTER = "invalid_document_edition_function_filter", 400, InvalidRequest;
    EDIT_DOCUMENTS_BY_FUNCTION_ERROR = "edit_documents_by_function_error", 400, InvalidRequest;
    INVALID_SETTINGS_INDEX_CHAT = "invalid_settings_index_chat", 400, InvalidRequest;
    INVALID_EXPORT_URL = "invalid_export_url", 400, InvalidRequest;
    INVALID_EXPORT_API_KEY = "invalid_export_api_key", 400, InvalidRequest;
    INVALID_EXPORT_PAYLOAD_SIZE = "invalid_export_payload_size", 400, InvalidRequest;
    INVALID_EXPORT_INDEXES_PATTERNS = "invalid_export_indexes_patterns", 400, InvalidRequest;
    INVALID_EXPORT_INDEX_FILTER = "invalid_export_index_filter", 400, InvalidRequest;
    INVALID_EXPORT_INDEX_OVERRIDE_SETTINGS = "invalid_export_index_override_settings", 400, InvalidRequest;
    UNIMPLEMENTED_EXTERNAL_FUNCTION_CALLING = "unimplemented_external_function_calling", 501, InvalidRequest;
    UNIMPLEMENTED_NON_STREAMING_CHAT_COMPLETIONS = "unimplemented_non_streaming_chat_completions", 501, InvalidRequest;
    UNIMPLEMENTED_MULTI_CHOICE_CHAT_COMPLETIONS = "unimplemented_multi_choice_chat_completions", 501, InvalidRequest;
    CHAT_NOT_FOUND = "chat_not_found", 404, InvalidRequest;
    INVALID_CHAT_SETTING_DOCUMENT_TEMPLATE = "invalid_chat_setting_document_template", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_ORG_ID = "invalid_chat_completion_org_id", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_PROJECT_ID = "invalid_chat_completion_project_id", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_API_VERSION = "invalid_chat_completion_api_version", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_DEPLOYMENT_ID = "invalid_chat_completion_deployment_id", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_SOURCE = "invalid_chat_completion_source", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_BASE_API = "invalid_chat_completion_base_api", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_API_KEY = "invalid_chat_completion_api_key", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_PROMPTS = "invalid_chat_completion_prompts", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_SYSTEM_PROMPT = "invalid_chat_completion_system_prompt", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_SEARCH_DESCRIPTION_PROMPT = "invalid_chat_completion_search_description_prompt", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_SEARCH_QUERY_PARAM_PROMPT = "invalid_chat_completion_search_query_param_prompt", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_SEARCH_FILTER_PARAM_PROMPT = "invalid_chat_completion_search_filter_param_prompt", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_SEARCH_INDEX_UID_PARAM_PROMPT = "invalid_chat_completion_search_index_uid_param_prompt", 400, InvalidRequest;
    INVALID_CHAT_COMPLETION_PRE_QUERY_PROMPT = "invalid_chat_completion_pre_query_prompt", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER = "invalid_index_fields_filter", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER_ATTRIBUTE_PATTERNS = "invalid_index_fields_filter_attribute_patterns", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER_DISPLAYED = "invalid_index_fields_filter_displayed", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER_SEARCHABLE = "invalid_index_fields_filter_searchable", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER_SORTABLE = "invalid_index_fields_filter_sortable", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER_DISTINCT = "invalid_index_fields_filter_distinct", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER_RANKING_RULE = "invalid_index_fields_filter_ranking_rule", 400, InvalidRequest;
    INVALID_INDEX_FIELDS_FILTER_FILTERABLE = "invalid_index_fields_filter_filterable", 400, InvalidRequest;
    REQUIRES_ENTERPRISE_EDITION = "requires_enterprise_edition", 451, InvalidRequest;
    INVALID_RENDER_TEMPLATE = "invalid_render_template", 400, InvalidRequest;
    INVALID_RENDER_INPUT = "invalid_render_input", 400, InvalidRequest;
    RENDER_DOCUMENT_NOT_FOUND = "render_document_not_found", 404, InvalidRequest;
    TEMPLATE_PARSING_ERROR = "template_parsing_error", 400, InvalidRequest;
    TEMPLATE_RENDERING_ERROR = "template_rendering_error", 400, InvalidRequest;
    INVALID_WEBHOOKS = "invalid_webhooks", 400, InvalidRequest;
    INVALID_WEBHOOK_URL = "invalid_webhook_url", 400, InvalidRequest;
    INVALID_WEBHOOK_HEADERS = "invalid_webhook_headers", 400, InvalidRequest;
    IMMUTABLE_WEBHOOK = "immutable_webhook", 400, InvalidRequest;
    INVALID_WEBHOOK_UUID = "invalid_webhook_uuid", 400, InvalidRequest;
    WEBHOOK_NOT_FOUND = "webhook_not_found", 404, InvalidRequest;
    IMMUTABLE_WEBHOOK_UUID = "immutable_webhook_uuid", 400, InvalidRequest;
    IMMUTABLE_WEBHOOK_IS_EDITABLE = "immutable_webhook_is_editable", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_OFFSET = "invalid_dynamic_search_rule_offset", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_LIMIT = "invalid_dynamic_search_rule_limit", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_FILTER = "invalid_dynamic_search_rule_filter", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_DESCRIPTION = "invalid_dynamic_search_rule_description", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_PRIORITY = "invalid_dynamic_search_rule_priority", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_ACTIVE = "invalid_dynamic_search_rule_active", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_CONDITIONS = "invalid_dynamic_search_rule_conditions", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_ACTIONS = "invalid_dynamic_search_rule_actions", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_FILTER_QUERY = "invalid_dynamic_search_rule_filter_query", 400, InvalidRequest;
    INVALID_DYNAMIC_SEARCH_RULE_FILTER_ACTIVE = "invalid_dynamic_search_rule_filter_active", 400, InvalidRequest;
    DYNAMIC_SEARCH_RULE_NOT_FOUND = "dynamic_search_rule_not_found", 404, InvalidRequest;
    // Miroir's own codes (docs/errors.md).
    MIROIR_RESERVED_FIELD = "miroir_reserved_field", 400, InvalidRequest;
    MIROIR_NO_QUORUM = "miroir_no_quorum", 503, System;
    MIROIR_UNAVAILABLE = "miroir_unavailable", 503, System;
    MIROIR_WRITES_FENCED = "miroir_writes_fenced", 503, System;
    MIROIR_NOT_SUPPORTED = "miroir_not_supported", 501, InvalidRequest;
    MIROIR_INVALID_HEADER = "miroir_invalid_header", 400, InvalidRequest;
    MIROIR_NOT_FOUND = "miroir_not_found", 404, InvalidRequest;
    MIROIR_ALREADY_EXISTS = "miroir_already_exists", 409, InvalidRequest;
    MIROIR_TOPOLOGY_REFUSED = "miroir_topology_refused", 409, InvalidRequest;
    // The dev node's fault injection (docs/devnode.md).
    MIROIR_DEVNODE_INJECTED_FAULT = "miroir_devnode_injected_fault", 500, Internal;
    MIROIR_DEVNODE_STOPPED = "miroir_devnode_stopped", 503, System;
}

impl Code {
    /// The code of that name, if Meilisearch or Miroir has one.
    pub fn named(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.name == name)
    }

    /// The code deserr gives a bad value of a parameter: the prefix, then the parameter's name in
    /// snake case (`invalid_search` and `hitsPerPage` give `invalid_search_hits_per_page`), or
    /// `bad_request` where Meilisearch has no such code.
    pub fn for_param(prefix: &str, param: &str) -> Code {
        let mut name = format!("{prefix}_");
        for c in param.chars() {
            if c.is_ascii_uppercase() {
                name.push('_');
                name.push(c.to_ascii_lowercase());
            } else {
                name.push(c);
            }
        }
        Code::named(&name).unwrap_or(Code::BAD_REQUEST)
    }

    /// The same code answered with another status: Meilisearch answers a few codes differently
    /// where they arise (an unknown index in a federated search is 400, not 404: the missing
    /// resource is not in the URL).
    pub const fn with_status(self, status: u16) -> Code {
        Code { status, ..self }
    }

    /// Meilisearch links every code to its documentation; Miroir's own codes point at ours.
    pub fn link(&self) -> String {
        if self.name.starts_with("miroir_") {
            format!("docs/errors.md#{}", self.name)
        } else {
            format!("https://docs.meilisearch.com/errors#{}", self.name)
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.name == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.name == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.name
    }
}

impl PartialEq<Code> for String {
    fn eq(&self, other: &Code) -> bool {
        self == other.name
    }
}

/// A body's `"code"` compared with a code.
impl PartialEq<Code> for Value {
    fn eq(&self, other: &Code) -> bool {
        self.as_str() == Some(other.name)
    }
}

/// A Meilisearch error: what went wrong, under which code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MeiliError {
    pub code: Code,
    pub message: String,
}

impl MeiliError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        MeiliError { code, message: message.into() }
    }

    pub fn index_not_found(uid: &str) -> Self {
        Self::new(Code::INDEX_NOT_FOUND, format!("Index `{uid}` not found."))
    }

    pub fn invalid_index_uid(uid: &str) -> Self {
        Self::new(
            Code::INVALID_INDEX_UID,
            format!("`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes."),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BAD_REQUEST, message)
    }

    pub fn status(&self) -> u16 {
        self.code.status
    }

    /// Meilisearch's error body.
    pub fn to_json(&self) -> Value {
        json!({
            "message": self.message,
            "code": self.code.name,
            "type": self.code.kind,
            "link": self.code.link(),
        })
    }
}

/// Meilisearch's response for an error: its status and body, and `Retry-After` on a 503.
#[cfg(feature = "axum")]
impl axum::response::IntoResponse for MeiliError {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{header, HeaderValue, StatusCode};
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, axum::Json(self.to_json())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_meilisearch_status_and_type() {
        assert_eq!(Code::INDEX_NOT_FOUND.status, 404);
        assert_eq!(Code::INVALID_API_KEY.kind, ErrorType::Auth);
        assert_eq!(Code::named("invalid_task_limit"), Some(Code::INVALID_TASK_LIMIT));
        assert_eq!(Code::named("payload_too_large").map(|c| c.status), Some(413));
        assert_eq!(Code::named("no_such_code"), None);
        assert_eq!(Code::INDEX_NOT_FOUND.with_status(400).name, "index_not_found");
        assert_eq!(Code::for_param("invalid_search", "hitsPerPage"), Code::INVALID_SEARCH_HITS_PER_PAGE);
        assert_eq!(Code::for_param("invalid_task", "afterEnqueuedAt"), Code::INVALID_TASK_AFTER_ENQUEUED_AT);
        assert_eq!(Code::for_param("invalid_search", "noSuchParameter"), Code::BAD_REQUEST);
    }

    #[test]
    fn every_code_is_listed_once() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a code is listed twice");
    }

    #[test]
    fn errors_have_meilisearch_shape() {
        let e = MeiliError::index_not_found("movies");
        assert_eq!(
            e.to_json(),
            json!({
                "message": "Index `movies` not found.",
                "code": "index_not_found",
                "type": "invalid_request",
                "link": "https://docs.meilisearch.com/errors#index_not_found"
            })
        );
        let e = MeiliError::new(Code::MIROIR_NO_QUORUM, "no quorum");
        assert_eq!(e.to_json()["link"], "docs/errors.md#miroir_no_quorum");
        assert_eq!(e.to_json()["type"], "system");
    }
}
