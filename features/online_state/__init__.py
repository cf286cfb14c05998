"""The online features as per-key state: see `state.OnlineState`."""

from features.online_state.state import OnlineState

__all__ = ["OnlineState"]
