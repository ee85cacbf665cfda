"""One module per sport, found automatically by :func:`ingester.convert.load_converters`.

A module named ``<sport>.py`` here pairs with ``schemas/<sport>.avsc`` and defines ``Data``: a
``TypedDict`` extending :class:`ingester.convert.common.CommonData` whose keys mirror the
protocol's ``data`` JSON and the schema's fields. Nothing else is needed to add a sport.

A module may also define ``SAMPLE`` (an example ``data``: sample frames, and a simulator that
plays it), ``HISTORY`` (the name of a ``data`` list that only grows over a match),
``headline(record) -> str`` (its line in ``sportrix-ingester tail``) and ``ENGINE`` (the
module path of its engine in the development kit's simulator). Plugin sports outside the
package are modules of the same kind: :mod:`ingester.convert.registry`.
"""
