"""Analysis: frames in, frames out. Nothing here prints or reads options.

One calling convention: the entry point a command calls (``select_runs``, ``group_table``,
``selection``, ``parcoords_table``, ``load_series``, ``analyse``, ``runs_table``,
``metrics_table``, ``compare``, ``importance``, ``scatter_table``) takes the loaded
:class:`~xpcli.dataset.Dataset` first, then its options; :meth:`Dataset.from_frames
<xpcli.dataset.Dataset.from_frames>` makes one from frames in memory. The steps they are
built from (``reduce_runs``, ``aggregate``, ``curve_stats``, ...) take and return frames.
"""
