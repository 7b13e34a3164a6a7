"""``python -m xlinalg``: which kernel layers run, CPU and GPU (:func:`xlinalg.show_config`)."""

import xlinalg

xlinalg.show_config()
