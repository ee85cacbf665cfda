"""A faster decode of well-formed data frames: straight into each sport's fields, with the
arrays left as JSON text (pure, no I/O).

:func:`ingester.upstream.frames.decode_frame` builds every value of a frame. A soccer
frame's ``events`` list is 45 of its ~96 JSON values and the same in 98 % of frames, and the
compiled writer's array memo only needs its JSON text. :class:`LazyFrameDecoder` decodes a
frame with msgspec into a ``Struct`` per sport (tagged by ``data.sport``) whose array fields
stay ``msgspec.Raw``; the writer looks their text up and decodes it with ``orjson`` only on
a miss.

It is an optimisation only, for sports the writer validates (see
:attr:`ingester.convert.common.SportConverter.writer_validates`). It returns ``None`` for
anything that is not a plain data frame of such a sport, and the pipeline decodes a frame
again with ``decode_frame`` whenever the writer refuses what it gave (see
:meth:`ingester.codecs.Codecs.fast_record`), so every error and
every record is the same as without it (one documented case aside: ``docs/schemas.md``,
*the lazy way*). msgspec does not check what it skips (UTF-8, number ranges), so a frame
with a top-level field the sport does not declare, which ``orjson`` would check and the
pipeline then ignore, is left to ``decode_frame`` too; the JSON text of an array is checked
by ``orjson`` when the writer decodes it, and only a checked text is ever remembered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import msgspec

from ingester.convert.shape import PlainShape
from ingester.upstream.frames import DataFrame, positive_int

__all__ = ["LazyFrameDecoder"]

_UNSET = msgspec.UNSET


class _NoSport(msgspec.Struct, tag_field="sport", tag="", forbid_unknown_fields=True):
    """Keeps the union tagged when one sport only is lazy: ``sport`` is then still required
    (a union of one tagged ``Struct`` takes a ``data`` without it). ``""`` is never valid."""


class LazyFrameDecoder:
    """Decodes ``snapshot``/``update`` frames of the given sports; ``None`` for anything else."""

    def __init__(self, shapes: Mapping[str, PlainShape | None]) -> None:
        """``shapes``: each sport's shape, ``None`` for a sport to leave to ``decode_frame``."""
        #: Each sport's Struct type → the sport and its optional keys.
        self._sports: dict[type[msgspec.Struct], tuple[str, tuple[str, ...]]] = {}
        for sport, shape in shapes.items():
            if shape is None:
                continue
            fields = [
                (key, msgspec.Raw if key in shape.arrays else Any, _UNSET)
                for key, _ in shape.keys
                if key != "sport"
            ]
            struct = msgspec.defstruct(
                f"Lazy_{sport}", fields, tag_field="sport", tag=sport, forbid_unknown_fields=True
            )
            optional = tuple(key for key, required in shape.keys if not required)
            self._sports[struct] = (sport, optional)
        sports: Any = Union[(*self._sports, _NoSport, None)]
        envelope = msgspec.defstruct(
            "LazyEnvelope",
            [("op", Any, None), ("match_id", Any, None), ("data", sports, None)],
            forbid_unknown_fields=True,
        )
        decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(envelope)
        self._decode = decoder.decode
        self.enabled = bool(self._sports)

    def decode(self, raw: bytes) -> DataFrame | None:
        """The data frame in ``raw``, its arrays as JSON text; ``None`` when unsure. Only
        the compiled writer (:meth:`ingester.codecs.SportCodecImpl.unchecked_record`) takes
        such a ``data``."""
        try:
            envelope = self._decode(raw)
        except (msgspec.MsgspecError, RecursionError):  # msgspec's depth limit is Python's
            return None
        data = envelope.data
        lazy = self._sports.get(type(data))
        op = envelope.op
        if lazy is None or not (op == "snapshot" or op == "update"):
            return None
        match_id = positive_int(envelope.match_id)
        if match_id is None or data.match_id != match_id:
            return None
        sport, optional = lazy
        values = msgspec.structs.asdict(data)
        for key in optional:
            if values[key] is _UNSET:
                del values[key]
        values["sport"] = sport
        return DataFrame(op=op, match_id=match_id, sport=sport, data=values)
