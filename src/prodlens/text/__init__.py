"""Speech text → product facts: AMPere's summariser (LLM backends, extractive fallback, grounding)."""
from .backends import BackendError, HTTPChatBackend, TransformersBackend, build_backend
from .extractive import ExtractiveSummarizer
from .facts import ProductFacts
from .grounding import Grounder, ground_facts
from .prompt import PROMPT_VERSION, chat_messages, completion_prompt, parse_json_object, sanitise_transcript
from .summarizer import Summarizer, Summary

__all__ = ["BackendError", "HTTPChatBackend", "TransformersBackend", "build_backend", "ExtractiveSummarizer",
           "ProductFacts", "Grounder", "ground_facts", "PROMPT_VERSION", "chat_messages", "completion_prompt",
           "parse_json_object", "sanitise_transcript", "Summarizer", "Summary"]
