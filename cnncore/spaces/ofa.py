def from_ofa_config(net_config, image_size): raise NotImplementedError
