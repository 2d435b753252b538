"""The state store benchmark's models (WRAPPERS_PACKAGE=store_wrappers): Responses API answers with no LLM, so
that what the store costs per response is as large a share of the work as it can be."""
