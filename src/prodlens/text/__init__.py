"""Speech text → product facts: AMPere's summariser (LLM backends, extractive fallback, grounding)."""
from ..lazy import exports

_WHERE = {
    "backends": ['BackendError', 'HTTPChatBackend', 'TransformersBackend', 'build_backend'],
    "extractive": ['ExtractiveSummarizer'],
    "facts": ['ProductFacts'],
    "grounding": ['Grounder', 'ground_facts'],
    "prompt": ['PROMPT_VERSION', 'chat_messages', 'completion_prompt', 'parse_json_object', 'sanitise_transcript'],
    "summarizer": ['Summarizer', 'Summary'],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = [name for names in _WHERE.values() for name in names]
