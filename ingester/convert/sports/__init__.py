"""One module per sport, found automatically by :func:`ingester.convert.load_converters`.

A module named ``<sport>.py`` here pairs with ``schemas/<sport>.avsc`` and defines ``Data``: a
``TypedDict`` extending :class:`ingester.convert.common.CommonData` whose keys mirror the
protocol's ``data`` JSON and the schema's fields. Nothing else is needed to add a sport.
"""
