"""An Ollama ``Modelfile`` for an exported GGUF: the chat template in Ollama's Go syntax, stops, sampling.

Ollama cannot run a Jinja chat template; it takes a Go ``text/template`` over ``.Messages``. Instead of a
table of known formats, the Jinja template is *decomposed*: it is rendered with sentinel strings as the
contents of a system, user and assistant message (and with the generation prompt), and the text around
each sentinel gives each role's prefix and suffix, the generation prompt, any text written once before
the first message, and a default system prompt the template adds when the chat has none (SmolLM2 does).
The decomposition is then checked by rebuilding other chats from the pieces and comparing them with the
Jinja rendering; a template that fails (one that merges the system prompt into the first user turn, say,
or that renders the last turn differently) is *not* translated.

Fallback, chosen so an export never fails for want of a template: the Modelfile then has no TEMPLATE
line but a comment saying why. Ollama then looks at the ``tokenizer.chat_template`` that the GGUF carries
and uses its own template when it recognises that one, else the raw prompt; stop parameters are still
written.

As in Ollama's own templates, a chat ending in an assistant message is left open (no end-of-turn after it)
so the model continues that answer, and the generation prompt follows only a final non-assistant message.
Messages with other roles (``tool``) are left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tunesmith.errors import ExportError

log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant")
# Unlikely to occur in any template, free of whitespace (templates may strip contents) and of markup.
_SENTINELS = {
    "S": "Qz7systemQz7",
    "U1": "Qz7user1Qz7",
    "A1": "Qz7answer1Qz7",
    "U2": "Qz7user2Qz7",
    "A2": "Qz7answer2Qz7",
}
_ROLE_OF = {"S": "system", "U1": "user", "A1": "assistant", "U2": "user", "A2": "assistant"}
# ``generation`` key -> Ollama PARAMETER name
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repeat_penalty",
    "max_new_tokens": "num_predict",
}

Render = Callable[[list[dict[str, str]], bool], str]


@dataclass(frozen=True)
class ChatTurns:
    """A chat template as plain text pieces: ``document + (prefix[role] + content + suffix[role])* + generation``.

    ``default_system`` is the system prompt the template writes (as a system turn) when a chat has none.
    """

    prefix: dict[str, str]
    suffix: dict[str, str]
    generation: str
    document: str = ""
    default_system: str | None = None

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        """The chat as the Jinja template would render it, from the pieces alone."""
        text = self.document
        if self.default_system is not None and (not messages or messages[0]["role"] != "system"):
            text += self.prefix["system"] + self.default_system + self.suffix["system"]
        for message in messages:
            text += self.prefix[message["role"]] + message["content"] + self.suffix[message["role"]]
        return text + (self.generation if add_generation_prompt else "")


def _chat(*keys: str) -> list[dict[str, str]]:
    return [{"role": _ROLE_OF[key], "content": _SENTINELS[key]} for key in keys]


def _cut(text: str, head: str, what: str) -> str:
    """``text`` without its leading ``head``; the template is not separable if it does not start so."""
    if not text.startswith(head):
        raise ExportError(f"the chat template's {what} does not follow the same text each time")
    return text[len(head) :]


def _pieces(text: str, keys: tuple[str, ...]) -> list[str]:
    """The text before, between and after the sentinels of ``keys`` (each must occur once, in order)."""
    pieces, rest = [], text
    for key in keys:
        sentinel = _SENTINELS[key]
        if rest.count(sentinel) != 1:
            raise ExportError(
                f"the chat template writes a {_ROLE_OF[key]} message's content {rest.count(sentinel)} times"
            )
        before, rest = rest.split(sentinel)
        pieces.append(before)
    return [*pieces, rest]


def _default_system(
    render: Render, document: str, system_prefix: str, system_suffix: str, user_prefix: str
) -> str | None:
    """The system prompt the template writes when a chat has none (SmolLM2 does), or None."""
    no_system = _pieces(render(_chat("U1"), True), ("U1",))[0]
    if no_system == document + user_prefix:
        return None
    around = _cut(no_system, document + system_prefix, "default system prompt")
    if not around.endswith(system_suffix + user_prefix):
        raise ExportError("the chat template adds text of its own before a chat without a system message")
    return around[: len(around) - len(system_suffix + user_prefix)]


def _check(turns: ChatTurns, render: Render) -> None:
    """Rebuild other chats from the pieces; any difference from the Jinja rendering means not separable."""
    for keys, add in (
        (("U1",), True),
        (("U1", "A1"), False),
        (("S", "U1", "A1", "U2"), True),
        (("U1", "A1", "U2", "A2"), False),
    ):
        if turns.render(_chat(*keys), add) != render(_chat(*keys), add):
            roles = "/".join(_ROLE_OF[k] for k in keys)
            raise ExportError(f"the chat template renders a {roles} chat otherwise than its pieces do")


def chat_turns(render: Render, bos_token: str | None = None) -> ChatTurns:
    """Decompose a chat template, given as ``render(messages, add_generation_prompt) -> text``.

    Raises:
        ExportError: the template does not render these chats, or its turns are not separable.
    """
    head, m_su, m_ua, m_au, m_ua2, asst_suffix = _pieces(
        render(_chat("S", "U1", "A1", "U2", "A2"), False), tuple(_SENTINELS)
    )
    user_suffix = _pieces(render(_chat("S", "U1", "A1", "U2"), False), ("S", "U1", "A1", "U2"))[-1]
    generation = _cut(
        _pieces(render(_chat("S", "U1", "A1", "U2"), True), ("S", "U1", "A1", "U2"))[-1],
        user_suffix,
        "generation prompt",
    )
    if m_ua != m_ua2:
        raise ExportError("the chat template writes the text between a user turn and its answer differently each time")
    asst_prefix = _cut(m_ua, user_suffix, "assistant turn")
    user_prefix = _cut(m_au, asst_suffix, "user turn after an answer")
    if not m_su.endswith(user_prefix):
        raise ExportError("the chat template writes the user turn after a system turn differently")
    system_suffix = m_su[: len(m_su) - len(user_prefix)]
    # BOS written once before the chat (Llama 3), not a turn marker that happens to be BOS (SmolLM2's <|im_start|>)
    document = bos_token if bos_token and head.startswith(bos_token) and not user_prefix.startswith(bos_token) else ""
    system_prefix = head[len(document) :]
    default_system = _default_system(render, document, system_prefix, system_suffix, user_prefix)
    turns = ChatTurns(
        prefix={"system": system_prefix, "user": user_prefix, "assistant": asst_prefix},
        suffix={"system": system_suffix, "user": user_suffix, "assistant": asst_suffix},
        generation=generation,
        document=document,
        default_system=default_system,
    )
    _check(turns, render)
    return turns


def _literal(text: str) -> str:
    """Template text for Go's text/template: only ``{{`` needs escaping (as a quoted action)."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(turns: ChatTurns, include_document: bool = True) -> str:
    """The Ollama TEMPLATE for ``turns``: one branch per role inside ``range .Messages``.

    The branches sit on one line: a trim marker (``{{-``) only ever removes this function's own line
    breaks, never template text, so every newline of the chat format survives.
    """
    branches = []
    for n, role in enumerate(ROLES):
        suffix = _literal(turns.suffix[role])
        if role == "assistant":  # left open when it is the last message: the model continues it
            suffix = "{{ if not $last }}" + suffix + "{{ end }}"
        keyword = "if" if n == 0 else "else if"
        branches.append(
            f'{{{{ {keyword} eq .Role "{role}" }}}}{_literal(turns.prefix[role])}{{{{ .Content }}}}{suffix}'
        )
    document = _literal(turns.document) if include_document else ""
    return "\n".join(
        [
            document + "{{ range $i, $_ := .Messages }}",
            "{{- $last := eq (len (slice $.Messages $i)) 1 }}",
            "{{- " + "".join(branches)[3:] + "{{ end }}",
            '{{- if and $last (ne .Role "assistant") }}' + _literal(turns.generation) + "{{ end }}",
            "{{- end }}",
        ]
    )


def _renderer(tokenizer: Any) -> Render:
    """``render(messages, add_generation_prompt)`` with the tokenizer's Jinja chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ExportError("the tokenizer has no chat template")

    def render(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        except Exception as exc:  # jinja2's TemplateError, or raise_exception() inside the template
            roles = "/".join(m["role"] for m in messages)
            raise ExportError(
                f"the chat template does not render a {roles} chat ({type(exc).__name__}: {exc})"
            ) from None
        return str(text)

    return render


def stop_strings(tokenizer: Any, generation: dict[str, Any] | None = None) -> list[str]:
    """The texts that end an answer: the template's end-of-turn marker, the EOS, the generation config's EOS ids."""
    from tunesmith.eval.generate import end_of_turn

    turn_id, turn_text = end_of_turn(tokenizer)
    eos = (generation or {}).get("eos_token_id")
    ids = [turn_id, tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])]
    texts = [turn_text] + [tokenizer.decode([int(i)]) for i in ids if i is not None]
    return list(dict.fromkeys(t for t in texts if t and t.strip()))


def sampling(generation: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """Ollama PARAMETERs from a generation config: greedy (temperature 0) when it says ``do_sample: false``."""
    generation = generation or {}
    if generation.get("do_sample") is False:
        return [("temperature", 0)]
    return [(name, generation[key]) for key, name in _SAMPLING.items() if generation.get(key) is not None]


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ExportError('a Modelfile cannot quote text that contains """')
    return f'"""{text}"""'


def modelfile(tokenizer: Any, gguf_name: str, generation: dict[str, Any] | None = None) -> str:
    """An Ollama Modelfile for ``gguf_name`` (a file beside it): FROM, TEMPLATE, SYSTEM, stop and sampling.

    Args:
        tokenizer: the exported model's tokenizer, with its chat template.
        gguf_name: the GGUF file's name; the Modelfile refers to it as ``./<gguf_name>``.
        generation: the generation config as a dict (``generation_config.json``): its EOS ids become stop
            strings; ``temperature``, ``top_p``, ``top_k``, ``repetition_penalty``, ``max_new_tokens`` become
            PARAMETERs.

    Returns:
        The Modelfile's text. When the chat template cannot be decomposed (see the module's docstring) it
        has no TEMPLATE line but a comment saying why, and a warning is logged.
    """
    from tunesmith.export.gguf_vocab import adds_special_tokens

    lines = [
        "# Ollama Modelfile written by tunesmith: `ollama create NAME -f Modelfile` in this folder.",
        f"FROM ./{gguf_name}",
    ]
    try:
        turns = chat_turns(_renderer(tokenizer), tokenizer.bos_token)
        # llama.cpp adds BOS itself when the tokenizer does; the template must not write it a second time
        lines.append(f"TEMPLATE {_quoted(go_template(turns, include_document=not adds_special_tokens(tokenizer)[0]))}")
        if turns.default_system is not None:
            lines.append(f"SYSTEM {_quoted(turns.default_system)}")
    except ExportError as exc:
        log.warning("Modelfile without TEMPLATE: %s", exc)
        lines += [
            f"# No TEMPLATE: {exc}, so it cannot be written in Ollama's template syntax.",
            "# Ollama then uses its own template when it recognises the GGUF's tokenizer.chat_template, else the raw",
            "# prompt.",
        ]
    lines += [f"PARAMETER stop {json.dumps(stop, ensure_ascii=False)}" for stop in stop_strings(tokenizer, generation)]
    lines += [f"PARAMETER {name} {value}" for name, value in sampling(generation)]
    return "\n".join(lines) + "\n"
