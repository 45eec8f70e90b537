//! Backbones shared by the model families (the U-Net's encoder today; SSD, Mask R-CNN and
//! the anomaly scorers later), each under the names its pretrained weights use.

pub mod resnet;
