"""VGG16-encoder U-Net for binary medical masks (Keras 3, any backend).

    from unet.model import UNet
    model = UNet(lr=1e-4).get_model((512, 512, 1))

Modules: model (UNet, build_unet), layers, weights (VGG16 ImageNet file), losses,
metrics (keras.ops), data (BinaryMaskSequence), training (fit, load_run), inference
(predict_masks at original size, overlays), evaluation (numpy per-image scores;
imports no Keras, so Mask R-CNN code can share it). Importing `unet` itself loads
nothing heavy.
"""
