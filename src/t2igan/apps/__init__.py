"""Applications on top of the library: the `t2igan` command, the web demo, human ranking, reports."""
