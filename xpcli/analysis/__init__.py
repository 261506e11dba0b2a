"""Analysis: frames in, frames out. Nothing here prints or reads options.

One calling convention: the entry point a command calls (``select_runs``, ``group_table``,
``selection``, ``parcoords_table``, ``load_series``, ``analyse``, ``runs_table``,
``metrics_table``, ``compare``, ``importance``, ``scatter_table``) takes the loaded
:class:`~xpcli.dataset.Dataset` first, then its options; :meth:`Dataset.from_frames
<xpcli.dataset.Dataset.from_frames>` makes one from frames in memory. The steps they are
built from (``reduce_runs``, ``aggregate``, ``curve_stats``, ...) take and return frames.
What the user should know about the series read goes into a
:class:`~xpcli.analysis.series_model.Notes` (``notes=``), which the command prints.
"""

# The x views of a series (xpcli.analysis.series_model). Spelled here, without polars, so
# the one --x option of every command (xpcli.commands._common) costs `xp --help` nothing.
X_AXES = ("epoch", "step", "time", "order")
#: ``--x`` accepts these: ``auto`` (the default) picks an axis per column.
X_CHOICES = ("auto", *X_AXES)
