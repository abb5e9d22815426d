import type { Messages } from './en';

const zh: Messages = {
  app: { title: 'AxonGate', signOut: '退出登录', language: '语言', loading: '加载中…' },
  nav: {
    dashboard: '仪表盘', providers: '供应商', keys: '供应商密钥', models: '模型', tokens: '用户令牌',
    usage: '用量', audit: '审计日志', users: '用户与角色', profile: '个人资料与设置',
  },
  common: {
    create: '创建', edit: '编辑', delete: '删除', save: '保存', cancel: '取消', close: '关闭', actions: '操作',
    enabled: '已启用', disabled: '已禁用', yes: '是', no: '否', name: '名称', id: 'ID', refresh: '刷新',
    confirmDelete: '删除 {{name}}？此操作无法撤销。', saved: '已保存', deleted: '已删除', none: '—',
    search: '搜索', total: '共 {{count}} 条', all: '全部', copy: '复制', copied: '已复制', updatedAt: '更新时间',
    error: '错误', unlimited: '不限', never: '从未',
  },
  login: {
    title: '登录 AxonGate', username: '用户名', password: '密码', submit: '登录',
    changeTitle: '设置新密码', changeHint: '这是您首次登录（或密码已被重置）：请设置新密码后继续。',
    current: '当前密码', newPassword: '新密码', confirm: '再次输入新密码', mismatch: '两次输入的密码不一致',
    minLength: '至少 8 个字符', changeSubmit: '修改密码', changed: '密码已修改',
  },
  dashboard: {
    activeProviders: '活跃供应商', enabledModels: '已启用模型', healthyKeys: '健康密钥', requestsToday: '今日请求',
    spendToday: '今日花费', errorRate: '今日错误率', p95: '今日 p95 延迟', lastMinute: '最近一分钟请求',
    overTime: '请求与花费趋势', topModels: '热门模型', errorsByKind: '错误类型分布', autoRefresh: '自动刷新',
    off: '关闭', noErrors: '此时间范围内没有错误',
  },
  range: { last1h: '最近 1 小时', last24h: '最近 24 小时', last7d: '最近 7 天', last30d: '最近 30 天', today: '今天' },
  providers: {
    title: '供应商', new: '新建供应商', protocol: '协议', baseUrl: '基础 URL', keys: '密钥', health: '密钥健康',
    allowPrivate: '允许私有网络', allowPrivateHelp: '基础 URL 位于私有或回环地址时需要开启',
    reenterSecrets: '此更改会改变供应商发送密钥的目的地。只有管理员可以免输密钥：请重新输入每个密钥的秘密值。',
    secretOf: '密钥 {{name}} 的秘密值',
    extraHeaders: '附加请求头', headerName: '请求头', headerValue: '值', addHeader: '添加请求头', timeouts: '超时（毫秒）',
    connect: '连接', firstByte: '首字节', idle: '空闲', totalTimeout: '总计', healthyOf: '{{total}} 个中 {{healthy}} 个健康',
    noKeys: '无密钥', protocolOpenai: 'OpenAI Chat Completions（及兼容接口）', protocolResponses: 'OpenAI Responses', protocolAnthropic: 'Anthropic Messages', baseUrlHelp: '包含版本前缀，例如 https://api.openai.com/v1',
  },
  keys: {
    title: '供应商密钥', new: '添加密钥', provider: '供应商', secret: '密钥', secretHelp: '只输入一次，加密存储，之后不再显示',
    newSecret: '新密钥（可选）', newSecretHelp: '留空则保留当前密钥', masked: '密钥', test: '测试',
    testOk: '密钥可用：HTTP {{status}}，耗时 {{latency}} 毫秒', testFailed: '密钥测试失败：{{error}}', health: '健康状态',
    healthy: '健康', failing: '故障', untested: '未测试', lastSuccess: '最近成功', lastError: '最近错误',
    lastStatus: '最近状态码', latency: '延迟',
  },
  models: {
    title: '模型', new: '新建模型', alias: '别名', aliasHelp: '客户端在 `model` 中发送的名称', routes: '路由', price: '每百万 token 价格',
    provider: '供应商', upstreamModel: '上游模型', priority: '优先级', weight: '权重', keyIds: '密钥（留空：全部）',
    addRoute: '添加路由', currency: '货币', input: '输入', output: '输出', cacheRead: '缓存读取', cacheWrite: '缓存写入',
    contextWindow: '上下文窗口', noPrice: '未定价', routeCount: '{{count}} 条路由',
    retry: '重试与熔断', retryHelp: '留空则使用 ingress 默认值（最多 4 次尝试，连续 5 次失败后密钥暂停 30 秒）。',
    maxAttempts: '最多尝试次数', retryOn: '重试的状态码', retryOnHelp: '逗号分隔，例如 429, 500, 503。留空：401、403、408、409、429 和 5xx。',
    breakerFailures: '暂停密钥的失败次数', breakerCooldown: '暂停时长（秒）', benchWhenAllOpen: '所有密钥暂停时直接拒绝',
    benchWhenAllOpenHelp: '关闭：所有密钥都暂停时仍然尝试。开启：客户端收到最后一次上游错误及 Retry-After。',
  },
  tokens: {
    title: '用户令牌', new: '新建令牌', owner: '所有者', allowedModels: '允许的模型', allowedHelp: '例如 gpt-* 的模式；留空允许所有模型',
    limits: '限额（RPM / TPM）', rpm: '每分钟请求数', tpm: '每分钟 token 数', budget: '预算', period: '周期', amount: '金额', expires: '过期时间',
    lastUsed: '最近使用', requestsToday: '今日请求', spendToday: '今日花费', rotate: '轮换', revoke: '吊销',
    confirmRotate: '轮换 {{name}}？当前密钥将立即失效。', confirmRevoke: '吊销 {{name}}？使用它的请求将被拒绝。',
    secretTitle: '您的新令牌', secretOnce: '请立即复制令牌：它只显示这一次。', gatewayUrl: '网关地址',
    revoked: '令牌已吊销', periods: { daily: '每日', weekly: '每周', monthly: '每月', total: '总计' }, token: '令牌', mine: '我',
  },
  usage: {
    title: '用量', model: '模型', provider: '供应商', token: '令牌', user: '用户', outcome: '结果', requests: '请求数',
    errors: '错误数', inputTokens: '输入 token', outputTokens: '输出 token', cost: '花费', latency: '延迟', ttfb: '首字节时间',
    errorRate: '错误率', breakdown: '分布', by: '维度', timeseries: '趋势', log: '请求日志', exportCsv: '导出 CSV',
    time: '时间', status: '状态码', stream: '流式', attempts: '尝试次数', errorKind: '错误类型', protocol: '客户端协议',
    requestId: '请求 ID', upstream: '上游模型', percentiles: '延迟百分位', cancelled: '已取消', success: '成功',
    noData: '此时间范围内没有请求', cacheTokens: '缓存 token（读 / 写）', key: '密钥',
    byOptions: { model: '模型', provider: '供应商', provider_key: '供应商密钥', token: '令牌', user: '用户', client_protocol: '客户端协议', outcome: '结果', error_kind: '错误类型' },
  },
  audit: {
    title: '审计日志', entity: '对象类型', entityId: '对象 ID', actor: '操作者', type: '事件', time: '时间', changes: '变更',
    field: '字段', before: '变更前', after: '变更后', noChanges: '没有字段变化',
  },
  users: {
    title: '用户与角色', new: '新建用户', username: '用户名', displayName: '显示名称', role: '角色', password: '密码',
    resetPassword: '新密码（可选）', resetHelp: '用户下次登录时必须修改', mustChange: '需修改密码',
    roles: { admin: '管理员', operator: '运维', viewer: '只读', member: '成员' },
  },
  profile: { title: '个人资料与设置', account: '账户', changePassword: '修改密码', languageHelp: '保存在此浏览器中' },
};

export default zh;
