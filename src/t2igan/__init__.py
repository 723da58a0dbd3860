"""t2igan — text-to-image GANs that work.

Reproduces Reed et al. 2016 (GAN, GAN-CLS, GAN-INT, GAN-INT-CLS), StackGAN and StackGAN++ as a library and a
command-line tool. Layers import downward only:
utils → data → text → models → losses → training → sampling → metrics → apps.
"""

__version__ = "0.1.0"
