"""Chorus' attention hooks on Wan blocks, through diffusers' hook registry (``diffusers.hooks``).

Capture and TGAA (on the cross-attention ``attn2``) and Stage 2's context (on the self-attention ``attn1``)
are each an ``AttentionHook``: a diffusers ``ModelHook`` registered by name on the chosen attention
modules, the mechanism diffusers' own intra-request caches (FirstBlockCache, MagCache…) use on the
blocks. A hook sees a module's call as one ``AttentionCall`` (the arguments of its processor) and either
passes it on, changed or not (``pass_on``: the next hook, in the end the module's own processor), or
computes the attention itself. Hooks of different names stack; removing one by name splices it out of
the chain, in any order, and leaves the module's processor untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from diffusers.hooks import HookRegistry, ModelHook

Attention = Literal["attn1", "attn2"]  # self-attention over video tokens, cross-attention to the text


class AttentionCall(NamedTuple):
    """One call of a Wan attention module: its processor's arguments, in their order."""

    hidden: torch.Tensor  # (rows, video tokens, dim)
    text: torch.Tensor | None = None  # (rows, text tokens, dim) in cross-attention; None in self-attention
    mask: torch.Tensor | None = None  # additive attention bias
    rotary: Any = None  # (cos, sin) of the video tokens' positions, self-attention only


class AttentionHook(ModelHook):
    """A hook on one block's attention module, driven by a state shared by every block's hook. Subclasses
    name themselves (``name``: the registry key), say which module they hook (``attention``) and ``attend``."""

    name: ClassVar[str]
    attention: ClassVar[Attention] = "attn2"

    def __init__(self, layer: int, state: Any) -> None:
        super().__init__()
        self.layer, self.state = layer, state

    def new_forward(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: Any = None,
    ) -> torch.Tensor:
        return self.attend(attn, AttentionCall(hidden_states, encoder_hidden_states, attention_mask, rotary_emb))

    def attend(self, attn: torch.nn.Module, call: AttentionCall) -> torch.Tensor:
        raise NotImplementedError

    def pass_on(self, call: AttentionCall) -> torch.Tensor:
        """The rest of the chain: the hooks registered before this one, then the module's processor."""
        return self.fn_ref.original_forward(*call)


def attention_modules(
    transformer: torch.nn.Module, layers: Iterable[int] | None, name: Attention = "attn2"
) -> list[tuple[int, Any]]:
    """(block index, the block's ``name`` module) for ``layers`` (None: every block)."""
    blocks = transformer.blocks
    chosen = range(len(blocks)) if layers is None else layers
    return [(i, getattr(blocks[i], name)) for i in chosen]


def hook_attention(
    transformer: torch.nn.Module, hook: type[AttentionHook], state: Any, layers: Iterable[int] | None = None
) -> Any:
    """Register ``hook(block index, state)`` on the ``layers`` blocks' attention (None: all); returns ``state``.
    Refuses to register a hook twice. The hooks are stateless to diffusers (the state is ours), so the
    cache contexts of the intra-request caches need not reach them."""
    modules = attention_modules(transformer, layers, hook.attention)
    registries = [(i, HookRegistry.check_if_exists_or_initialize(attn)) for i, attn in modules]
    if any(registry.get_hook(hook.name) is not None for _, registry in registries):
        raise RuntimeError(f"{hook.__name__} is already applied")
    for i, registry in registries:
        registry.register_hook(hook(i, state), hook.name)
    return state


def unhook_attention(transformer: torch.nn.Module, hook: type[AttentionHook]) -> None:
    """Remove ``hook`` from every block that has it (none: nothing to do)."""
    for _, attn in attention_modules(transformer, None, hook.attention):
        HookRegistry.check_if_exists_or_initialize(attn).remove_hook(hook.name, recurse=False)


@contextmanager
def attention_hooks(
    transformer: torch.nn.Module, hooks: Sequence[tuple[type[AttentionHook], Any, Iterable[int] | None]]
) -> Iterator[None]:
    """Each (hook, state, layers) registered for the block and removed after it, however it ends."""
    with ExitStack() as registered:
        for hook, state, layers in hooks:
            hook_attention(transformer, hook, state, layers)
            registered.callback(unhook_attention, transformer, hook)
        yield
