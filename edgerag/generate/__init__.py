"""Grounded answers: prompts, the llama.cpp generator, citation checking, the ask pipeline and chat sessions."""
