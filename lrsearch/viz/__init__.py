"""What lrsearch shows: plot data computed apart from its drawing (`plots`), and the HTML
that Jupyter shows for results (`notebook`). Nothing here computes evidence; results
hand in what to show.
"""
